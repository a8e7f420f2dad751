"""The "reviewers" group: may decide approvals and see what they approve.

Viewers, operators and owners may look at approval requests and decisions;
deciding is the reviewers group's (a pipeline's Reviewers configuration
narrows it further, per approval action).
"""

from django.db import migrations

VIEW = ["view_approvalrequest", "view_approvaldecision"]
DECIDE = VIEW + ["decide_approvalrequest"]
LOOK_AROUND = {
    "pipelines": ["view_pipeline", "view_pipelineversion", "view_stage", "view_action"],
    "executions": ["view_pipelineexecution", "view_stageexecution", "view_actionexecution",
                   "view_artifact", "view_sourcerevision", "view_executionevent"],
}
GROUPS = {"viewers": VIEW, "operators": VIEW, "owners": VIEW}


def _create_permissions(apps, label):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make them now.
    app_config = apps.get_app_config(label)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None


def grant(apps, schema_editor):
    for label in ("approvals", "pipelines", "executions"):
        _create_permissions(apps, label)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="approvals", codename__in=codenames))
    reviewers, _ = Group.objects.get_or_create(name="reviewers")
    reviewers.permissions.add(*Permission.objects.filter(
        content_type__app_label="approvals", codename__in=DECIDE))
    for label, codenames in LOOK_AROUND.items():
        reviewers.permissions.add(*Permission.objects.filter(
            content_type__app_label=label, codename__in=codenames))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.filter(name="reviewers").delete()
    Permission.objects.filter(content_type__app_label="approvals").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0001_initial"),
        ("executions", "0002_groups"),
        ("pipelines", "0002_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
