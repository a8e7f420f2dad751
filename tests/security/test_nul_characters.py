"""A NUL character in any key or value of a JSON or YAML body is refused with a 400 naming
its path, before any view sees it: no field accepts one and PostgreSQL cannot store it (the
schema fuzzer found a 500 on POST /api/build-projects/, /api/pipeline-groups/ and
/api/pipelines/ with a NUL in a name)."""

import io

import pytest
from rest_framework.exceptions import ParseError

from config.bodies import BodyRefused, json_loads
from pipelines.api.parsers import BoundedJSONParser, TextYAMLParser


@pytest.mark.parametrize("text, path", [
    ('{"name": "a\\u0000b"}', "$.name"),
    ('{"roles": [{"user": "x\\u0000"}]}', "$.roles[0].user"),
    ('{"pipeline": {"na\\u0000me": 1}}', "$.pipeline"),
])
def test_a_nul_character_is_refused_at_its_path(text, path):
    with pytest.raises(BodyRefused) as refused:
        json_loads(text)
    assert str(refused.value).startswith(f"{path} holds a NUL character")
    with pytest.raises(ParseError, match="NUL character"):
        BoundedJSONParser().parse(io.BytesIO(text.encode()))


def test_a_nul_character_in_yaml_is_refused_and_ordinary_text_passes():
    with pytest.raises(ParseError, match=r"\$\.name holds a NUL character"):
        TextYAMLParser().parse(io.BytesIO(b'name: "G\\0R"\nnetwork: host\n'))
    assert TextYAMLParser().parse(io.BytesIO(b"name: web\n")) == {"name": "web"}
    assert json_loads('{"name": "caf\\u00e9"}') == {"name": "café"}


def test_the_api_answers_400_not_500(admin_client):
    answer = admin_client.post("/api/pipeline-groups/", '{"name": "a\\u0000b", "roles": []}',
                               content_type="application/json")
    assert answer.status_code == 400
    assert "NUL character" in answer.content.decode()
