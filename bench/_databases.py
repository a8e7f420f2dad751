"""What the benchmarks need on a fresh machine: their PostgreSQL database."""

from __future__ import annotations


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database ``url`` names if it does not exist yet (connecting to
    the server's ``postgres`` database with the same credentials)."""
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    name = name.split("?")[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
