"""The default pipeline group, granting today's global role groups their roles on it.

Before pipeline groups, the Django groups viewers, operators, reviewers and owners
held their roles on every pipeline; every existing pipeline goes into "default",
where those groups hold the same roles, so nothing changes until a second group is
made. The "administrators" Django group is made too (every role, every group).
"""

from django.db import migrations

DEFAULT_GROUP = "default"
DEFAULT_GRANTS = (("viewers", "viewer"), ("operators", "operator"),
                  ("reviewers", "reviewer"), ("owners", "owner"))


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    PipelineGroup = apps.get_model("teams", "PipelineGroup")
    RoleGrant = apps.get_model("teams", "RoleGrant")
    Group.objects.get_or_create(name="administrators")
    group, _ = PipelineGroup.objects.get_or_create(
        name=DEFAULT_GROUP, defaults={"description": "Pipelines not put in another group."})
    for django_group, role in DEFAULT_GRANTS:
        holder, _ = Group.objects.get_or_create(name=django_group)
        RoleGrant.objects.get_or_create(pipeline_group=group, role=role, group=holder)


class Migration(migrations.Migration):
    dependencies = [("teams", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
