"""Execution permissions for the role groups: viewers look, operators and owners run."""

from django.db import migrations

MODELS = ["pipelineexecution", "stageexecution", "actionexecution", "artifact",
          "sourcerevision", "executionevent"]
VIEW = [f"view_{model}" for model in MODELS]
RUN = VIEW + ["start_pipelineexecution", "stop_pipelineexecution", "retry_pipelineexecution",
              "rollback_pipelineexecution", "toggle_transition"]
GROUPS = {"viewers": VIEW, "operators": RUN, "owners": RUN}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make them now.
    app_config = apps.get_app_config("executions")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="executions", codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="executions").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0001_initial"),
        ("pipelines", "0002_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
