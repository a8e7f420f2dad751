"""Build projects in the roles: viewers and operators look, owners define."""

from django.db import migrations

VIEW = ["view_buildproject"]
OWN = VIEW + ["add_buildproject", "change_buildproject", "delete_buildproject"]
GROUPS = {"viewers": VIEW, "operators": VIEW, "owners": OWN}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

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
    dependencies = [("pipelines", "0003_build_projects_compute")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
