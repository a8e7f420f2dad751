"""Connections: REST, admin, import/export; credentials are stored encrypted, never shown."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db

from pipelines import services
from pipelines.models import Connection

pytestmark = pytest.mark.django_db

TOKEN = "glpat-Sup3rS3cretT0ken"
ARN = "arn:aws:codestar-connections:us-east-1:111122223333:connection/abc-123"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n" \
      "-----END OPENSSH PRIVATE KEY-----"


def stored_row_text(name: str) -> str:
    """The connection's row as the database holds it (what a backup would show)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM pipelines_connection WHERE name = %s", [name])
        return repr(cursor.fetchone())


# --- REST ------------------------------------------------------------------------------


def test_an_owner_makes_a_connection_and_the_token_is_never_answered(api, owner):
    response = api(owner).post("/api/connections/", {
        "name": "gitlab", "provider": "GitLab", "baseUrl": "https://gitlab.example.com/",
        "arns": [ARN], "token": TOKEN}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert TOKEN not in json.dumps(body)
    assert (body["name"], body["baseUrl"], body["arns"], body["credential"]) == (
        "gitlab", "https://gitlab.example.com", [ARN], "token")
    listed = api(owner).get("/api/connections/").json()
    assert TOKEN not in json.dumps(listed)
    assert TOKEN not in api(owner).get("/api/connections/gitlab/").content.decode()
    assert TOKEN not in stored_row_text("gitlab")  # encrypted at rest
    credential = services.connection_credential(connection=Connection.objects.get())
    assert (credential.secret, credential.username) == (TOKEN, "oauth2")
    assert TOKEN not in repr(credential)


def test_changing_a_connection_without_a_credential_keeps_the_stored_one(api, owner):
    api(owner).post("/api/connections/", {"name": "gh", "provider": "GitHub",
                                          "baseUrl": "https://github.com", "token": TOKEN},
                    format="json")
    response = api(owner).patch("/api/connections/gh/", {"arns": [ARN]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["credential"] == "token"
    connection = Connection.objects.get()
    assert services.connection_credential(connection=connection).secret == TOKEN
    cleared = api(owner).patch("/api/connections/gh/", {"clearCredential": True},
                               format="json")
    assert cleared.json()["credential"] == "none"


def test_a_bad_connection_is_refused_with_every_problem_at_its_field(api, owner):
    services.connection_save(name="first", provider="Git", base_url="/srv/git", arns=[ARN])
    response = api(owner).post("/api/connections/", {
        "name": "bad name", "provider": "GitHub",
        "baseUrl": "https://user:hunter2@github.com", "arns": [ARN, "not-an-arn"],
        "token": TOKEN, "sshKey": KEY}, format="json")
    assert response.status_code == 400
    found = {(e["path"], e["message"]) for e in response.json()["errors"]}
    assert ("name", '"bad name" is not a valid name: use letters, digits and . @ _ - only, '
            "1 to 100 characters") in found
    assert ("baseUrl", "must not hold a password or token (it would be shown): give the "
            "token as the credential") in found
    assert any(path == "arns[1]" for path, _ in found)
    assert ("sshKey", "give a token or an SSH key, not both") in found
    assert Connection.objects.count() == 1


def test_an_exact_arn_belongs_to_one_connection(api, owner):
    services.connection_save(name="first", provider="Git", base_url="/srv/git", arns=[ARN])
    response = api(owner).post("/api/connections/", {
        "name": "second", "baseUrl": "/srv/other", "arns": [ARN]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "arns[0]", "message": f'"{ARN}" already belongs to connection "first"',
         "severity": "error"}]


def test_viewers_see_connections_but_only_owners_change_them_and_outsiders_see_nothing(
        api, owner, viewer, operator, outsider):
    services.connection_save(name="gh", provider="GitHub", base_url="https://github.com",
                             arns=[ARN], token=TOKEN)
    assert api(viewer).get("/api/connections/").status_code == 200
    body = {"name": "new", "baseUrl": "https://github.com"}
    assert api(operator).post("/api/connections/", body, format="json").status_code == 403
    assert api(viewer).delete("/api/connections/gh/").status_code == 403
    assert api(outsider).get("/api/connections/").status_code == 403
    assert api(None).get("/api/connections/").status_code == 401
    assert api(owner).delete("/api/connections/gh/").status_code == 204
    assert not Connection.objects.exists()


# --- admin -------------------------------------------------------------------------------


def test_the_admin_makes_a_connection_and_never_shows_its_credential_back(client, owner):
    client.force_login(owner)
    response = client.post("/admin/pipelines/connection/add/", {
        "name": "bitbucket", "provider": "Bitbucket", "base_url": "https://bitbucket.org",
        "arns": f"{ARN}\ncodecommit:*", "username": "", "token": TOKEN, "ssh_key": ""})
    assert response.status_code == 302, response.content.decode()[-3000:]
    connection = Connection.objects.get()
    assert sorted(a.arn for a in connection.arns.all()) == [ARN, "codecommit:*"]
    page = client.get(f"/admin/pipelines/connection/{connection.pk}/change/").content.decode()
    assert TOKEN not in page and "token (HTTP)" in page
    listing = client.get("/admin/pipelines/connection/").content.decode()
    assert "bitbucket" in listing and TOKEN not in listing


def test_the_admin_shows_a_taken_arn_on_the_form_and_saves_nothing(client, owner):
    services.connection_save(name="first", provider="Git", base_url="/srv/git", arns=[ARN])
    client.force_login(owner)
    response = client.post("/admin/pipelines/connection/add/", {
        "name": "second", "provider": "Git", "base_url": "/srv/other", "arns": ARN})
    assert response.status_code == 200
    assert "already belongs to connection" in response.content.decode()
    assert Connection.objects.count() == 1


# --- import / export -------------------------------------------------------------------


def test_export_prints_no_credential_and_import_reads_it_back(tmp_path):
    services.connection_save(name="gh", provider="GitHub", base_url="https://github.com",
                             arns=[ARN], token=TOKEN)
    services.connection_save(name="ssh", provider="Gitea", base_url="git@gitea.example.com:",
                             arns=["codecommit:*"], ssh_key=KEY)
    out = io.StringIO()
    call_command("export_connections", stdout=out)
    exported = out.getvalue()
    assert TOKEN not in exported and "AAAAB3NzaC1yc2E" not in exported
    assert json.loads(exported)["connections"][0] == {
        "name": "gh", "provider": "GitHub", "baseUrl": "https://github.com", "arns": [ARN],
        "credential": "token"}
    Connection.objects.all().delete()
    path = tmp_path / "connections.json"
    path.write_text(exported)
    out = io.StringIO()
    call_command("import_connections", str(path), stdout=out)
    assert out.getvalue().splitlines() == [
        'created connection "gh" (GitHub, https://github.com, no credential)',
        'created connection "ssh" (Gitea, git@gitea.example.com:, no credential)']


def test_the_aws_list_connections_answer_imports_with_the_public_forge_as_base_url(tmp_path):
    path = tmp_path / "aws.json"
    path.write_text(json.dumps({"Connections": [{
        "ConnectionName": "my-github", "ConnectionArn": ARN, "ProviderType": "GitHub",
        "OwnerAccountId": "111122223333", "ConnectionStatus": "AVAILABLE"}]}))
    call_command("import_connections", str(path), stdout=io.StringIO())
    connection = Connection.objects.get()
    assert (connection.name, connection.provider, connection.base_url) == (
        "my-github", "GitHub", "https://github.com")
    assert [a.arn for a in connection.arns.all()] == [ARN]


def test_an_import_with_one_bad_entry_changes_nothing_and_names_it(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("connections:\n- {name: good, baseUrl: /srv/git}\n"
                    "- {name: bad, baseUrl: relative/path, colour: blue}\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="refused, nothing changed"):
        call_command("import_connections", str(path), stdout=io.StringIO(), stderr=err)
    assert 'error: connections[1].colour: "colour" is not a field of a connection' in \
        err.getvalue()
    assert not Connection.objects.exists()
