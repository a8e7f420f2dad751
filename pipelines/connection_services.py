"""Every operation that changes a connection (CodeStar/CodeConnections stand-ins).

Part of the pipelines app's services, kept in its own module for size; callers use
``pipelines.services`` (which re-exports these) or this module directly.
"""

import re
from typing import Any

from django.db import transaction

from pipelines import secrets
from pipelines.choices import ConnectionProvider, CredentialKind
from pipelines.models import Connection, ConnectionArn
from pipelines.validation import NAME_RE, NAME_RULE, Problem


class ConnectionInvalid(Exception):
    """A connection was refused; ``problems`` lists every reason with its field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


ARN_RE = re.compile(r"^(arn:[A-Za-z0-9*:/._-]+|codecommit:[A-Za-z0-9*._-]+)$")
_URL_RE = re.compile(r"^(https?|ssh|git|file)://[^\s@]*[^\s]*$")
_SCP_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]*$")
# The public forges' clone URLs: a connection imported from AWS's list-connections
# starts with these (self-managed hosts must give theirs).
PUBLIC_BASE_URLS = {
    "GitHub": "https://github.com",
    "GitLab": "https://gitlab.com",
    "Bitbucket": "https://bitbucket.org",
}
# CodeConnections' ProviderType values, as Conveyor's providers.
AWS_PROVIDER_TYPES = {
    "GitHub": "GitHub", "GitHubEnterpriseServer": "GitHub",
    "GitLab": "GitLab", "GitLabSelfManaged": "GitLab",
    "Bitbucket": "Bitbucket",
}


def _base_url_problem(url: str) -> str | None:
    if not url:
        return "is required"
    if url.startswith("-") or "::" in url.split("/", 1)[0]:
        return f'"{url}" is not a clone URL'
    if re.match(r"^[a-z+]+://[^/@]*:[^/@]*@", url):
        return ("must not hold a password or token (it would be shown): give the token "
                "as the credential")
    if _URL_RE.match(url) or _SCP_RE.match(url) or url.startswith("/"):
        return None
    return (f'"{url}" is not a clone URL: use https://host[/group], ssh://git@host, '
            "git@host: or an absolute path")


def connection_problems(*, name: str, provider: str, base_url: str, arns: list,
                        username: str = "", token: str | None = None,
                        ssh_key: str | None = None) -> list[Problem]:
    """Every problem of a connection's fields at once, by field name (pure)."""
    problems = []
    if not isinstance(name, str) or not NAME_RE.match(name or ""):
        problems.append(Problem("name", f'"{name}" is not a valid name: use {NAME_RULE}'
                                if name else "is required"))
    if provider not in ConnectionProvider.values:
        problems.append(Problem("provider", f'"{provider}" is not a provider: use '
                                + ", ".join(ConnectionProvider.values)))
    if not isinstance(base_url, str):
        problems.append(Problem("baseUrl", "must be a string"))
    elif problem := _base_url_problem(base_url.strip()):
        problems.append(Problem("baseUrl", problem))
    if not isinstance(arns, list):
        problems.append(Problem("arns", "must be a list of ARNs"))
        arns = []
    seen = set()
    for i, arn in enumerate(arns):
        if not isinstance(arn, str) or not ARN_RE.match(arn) or len(arn) > 300:
            problems.append(Problem(
                f"arns[{i}]", f'"{arn}" is not an ARN: use arn:aws:codeconnections:REGION:'
                "ACCOUNT:connection/ID (* matches anything) or codecommit:REPOSITORY"))
        elif arn in seen:
            problems.append(Problem(f"arns[{i}]", f'"{arn}" is listed twice'))
        seen.add(arn)
    if not isinstance(username, str) or len(username) > 100 or (
            username and not re.match(r"^[A-Za-z0-9._@+-]+$", username)):
        problems.append(Problem("username", "letters, digits and . _ @ + - only, at most 100"))
    if token and ssh_key:
        problems.append(Problem("sshKey", "give a token or an SSH key, not both"))
    if token is not None and token != "" and (not isinstance(token, str)
                                              or re.search(r"\s", token)):
        problems.append(Problem("token", "must be one line without spaces"))
    if ssh_key and (not isinstance(ssh_key, str) or "PRIVATE KEY-----" not in ssh_key):
        problems.append(Problem("sshKey", "must be a private key in OpenSSH or PEM form "
                                "(-----BEGIN ... PRIVATE KEY-----)"))
    return problems


def connection_check(*, name: str, provider: str, base_url: str, arns: list,
                     username: str = "", token: str | None = None, ssh_key: str | None = None,
                     connection: Connection | None = None) -> list[Problem]:
    """``connection_problems`` and the clashes with other connections (name, exact ARNs)."""
    problems = connection_problems(name=name, provider=provider, base_url=base_url, arns=arns,
                                   username=username, token=token, ssh_key=ssh_key)
    if problems:
        return problems
    others = ConnectionArn.objects.filter(arn__in=arns).select_related("connection")
    if connection is not None and connection.pk:
        others = others.exclude(connection=connection)
    for row in others:
        problems.append(Problem(f"arns[{arns.index(row.arn)}]",
                                f'"{row.arn}" already belongs to connection '
                                f'"{row.connection.name}"'))
    if Connection.objects.filter(name=name).exclude(pk=getattr(connection, "pk", None)).exists():
        problems.append(Problem("name", f'a connection named "{name}" already exists'))
    return problems


def connection_save(*, name: str, provider: str, base_url: str, arns: list[str],
                    username: str = "", token: str | None = None, ssh_key: str | None = None,
                    clear_credential: bool = False,
                    connection: Connection | None = None) -> Connection:
    """Create (``connection`` None) or change a connection; raise ``ConnectionInvalid``.

    1. Every field is checked at once (``connection_problems``); an exact ARN
       another connection answers to is refused.
    2. A ``token`` or ``ssh_key`` replaces the stored credential (encrypted);
       giving neither keeps it, ``clear_credential`` removes it.
    3. The ARNs are replaced by ``arns``.
    """
    base_url = (base_url or "").strip().rstrip("/") if isinstance(base_url, str) else base_url
    problems = connection_check(name=name, provider=provider, base_url=base_url or "",
                                arns=arns, username=username, token=token, ssh_key=ssh_key,
                                connection=connection)
    if problems:
        raise ConnectionInvalid(problems)
    with transaction.atomic():
        if connection is None:
            connection = Connection(name=name)
        connection.name, connection.provider, connection.base_url = name, provider, base_url
        connection.username = username or ""
        if token:
            connection.credential_kind = CredentialKind.TOKEN
            connection.credential_encrypted = secrets.encrypt(token)
        elif ssh_key:
            # ssh refuses a key file whose last line lacks its new line.
            connection.credential_kind = CredentialKind.SSH_KEY
            connection.credential_encrypted = secrets.encrypt(ssh_key.strip() + "\n")
        elif clear_credential:
            connection.credential_kind = CredentialKind.NONE
            connection.credential_encrypted = ""
        connection.save()
        connection.arns.exclude(arn__in=arns).delete()
        have = set(connection.arns.values_list("arn", flat=True))
        ConnectionArn.objects.bulk_create(
            [ConnectionArn(connection=connection, arn=a) for a in arns if a not in have])
    return connection


def connection_delete(*, connection: Connection) -> None:
    """Delete a connection; actions that named it need another one before they run."""
    connection.delete()


def connection_credential(*, connection: Connection) -> secrets.Credential | None:
    """The decrypted credential, for the Git runner in the worker only; None without one."""
    if not connection.credential_encrypted:
        return None
    return secrets.Credential(
        kind=connection.credential_kind,
        secret=secrets.decrypt(connection.credential_encrypted),
        username=connection.username or secrets.TOKEN_USERS.get(connection.provider, "git"))


def connection_export_all() -> dict:
    """Every connection as an import document; credentials are never exported."""
    return {"connections": [
        {"name": c.name, "provider": c.provider, "baseUrl": c.base_url,
         "arns": [a.arn for a in c.arns.all()],
         **({"username": c.username} if c.username else {}),
         "credential": c.credential_kind or "none"}
        for c in Connection.objects.prefetch_related("arns")
    ]}


def _entry(item: Any, path: str, problems: list[Problem]) -> dict | None:
    """One connection of an import document, as connection_save's arguments."""
    if not isinstance(item, dict):
        problems.append(Problem(path, "must be an object"))
        return None
    if "ConnectionArn" in item:  # an entry of `aws codeconnections list-connections`
        kind = item.get("ProviderType", "")
        provider = AWS_PROVIDER_TYPES.get(kind)
        if provider is None:
            problems.append(Problem(f"{path}.ProviderType",
                                    f'"{kind}" is not a provider Conveyor reaches: use '
                                    + ", ".join(AWS_PROVIDER_TYPES)))
            return None
        return {"name": item.get("ConnectionName", ""), "provider": provider,
                "base_url": item.get("baseUrl") or PUBLIC_BASE_URLS.get(kind, ""),
                "arns": [item["ConnectionArn"]]}
    known = {"name", "provider", "baseUrl", "arns", "username", "token", "sshKey",
             "credential"}
    for key in item:
        if key not in known:
            problems.append(Problem(f"{path}.{key}", f'"{key}" is not a field of a connection: '
                                    "use " + ", ".join(sorted(known))))
    return {"name": item.get("name", ""), "provider": item.get("provider", "Git"),
            "base_url": item.get("baseUrl", ""), "arns": item.get("arns", []),
            "username": item.get("username", ""), "token": item.get("token"),
            "ssh_key": item.get("sshKey")}


def connection_import(*, data: Any) -> list[tuple[Connection, bool]]:
    """Create or update the connections of an import document; all or nothing.

    The document is ``{"connections": [...]}`` as ``connection_export_all`` writes
    it (``token`` or ``sshKey`` may be added), or the answer of
    ``aws codeconnections list-connections`` (``{"Connections": [...]}``: name,
    ARN and provider are taken, the public forge's URL is the base URL). An
    existing connection of the same name is updated and keeps its credential
    unless the entry gives one. Returns (connection, created) pairs.
    """
    problems: list[Problem] = []
    key = "Connections" if isinstance(data, dict) and "Connections" in data else "connections"
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ConnectionInvalid([Problem("connections", "is required: a list of connections")])
    entries = [(f"{key}[{i}]", _entry(item, f"{key}[{i}]", problems))
               for i, item in enumerate(items)]
    if problems:
        raise ConnectionInvalid(problems)
    done = []
    with transaction.atomic():
        for path, entry in entries:
            existing = Connection.objects.filter(name=entry["name"]).first()
            try:
                saved = connection_save(**entry, connection=existing)
            except ConnectionInvalid as exc:
                problems += [Problem(f"{path}.{p.path}", p.message) for p in exc.problems]
                continue
            done.append((saved, existing is None))
        if problems:
            transaction.set_rollback(True)
            raise ConnectionInvalid(problems)
    return done
