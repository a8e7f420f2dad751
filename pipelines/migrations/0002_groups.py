"""The three roles as groups: viewers look, operators run, owners define.

Later apps add their own permissions to these groups in their own migrations.
"""

from django.db import migrations

VIEW = ["view_pipeline", "view_pipelineversion", "view_stage", "view_action"]
OWN = VIEW + [f"{verb}_{model}" for verb in ("add", "change", "delete")
              for model in ("pipeline", "stage", "action")]
GROUPS = {"viewers": VIEW, "operators": VIEW, "owners": OWN}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="pipelines", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
