"""Custom action types in the roles: owners and administrators register, change and
delete them; viewers and operators look (docs/job-workers.md, "Who manages custom
action types").

A type is shared by every pipeline group, as build projects and connections are, and so
is governed, like them, by global model permissions: the Django group "owners" (who
define what runs) and "administrators" (on AWS, CreateCustomActionType is an IAM
permission of an account's administrators and of CodePipeline's full-access policy).
"""

from django.db import migrations

VIEW = ["view_customactiontype"]
MANAGE = VIEW + ["add_customactiontype", "change_customactiontype", "delete_customactiontype"]
GROUPS = {"viewers": VIEW, "operators": VIEW, "owners": MANAGE, "administrators": MANAGE}


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
            *Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("pipelines", "0002_groups"),
        ("teams", "0002_default_group"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
