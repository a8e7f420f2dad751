"""On PostgreSQL the database itself refuses to change or delete an audit entry.

A trigger raises on UPDATE and DELETE of observability_auditentry, so neither a
bug nor a hand-written query can rewrite the trail. (TRUNCATE, a table owner's
act, is not refused: test databases are emptied that way.) SQLite has no such
guard here: its test databases are emptied with DELETE.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION observability_auditentry_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'The audit trail is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER observability_auditentry_append_only
    BEFORE UPDATE OR DELETE ON observability_auditentry
    FOR EACH ROW EXECUTE FUNCTION observability_auditentry_refuse();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS observability_auditentry_append_only ON observability_auditentry;
DROP FUNCTION IF EXISTS observability_auditentry_refuse();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("observability", "0002_audit_entry")]
    operations = [migrations.RunPython(forward, backward)]
