"""YAML request bodies: a definition document may be sent as YAML.

The YAML is read as JSON-compatible data (dates stay strings, NaN and non-string
keys are refused), the same way ``manage.py import_pipeline`` and the admin read it.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from pipelines.documents import DocumentError, parse_yaml


class YAMLParser(BaseParser):
    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            text = stream.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("the YAML body is not UTF-8 text") from exc
        try:
            return parse_yaml(text)
        except DocumentError as exc:
            raise ParseError(str(exc)) from exc


class TextYAMLParser(YAMLParser):
    media_type = "text/yaml"


class XYAMLParser(YAMLParser):
    media_type = "application/x-yaml"
