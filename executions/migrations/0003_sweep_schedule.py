"""The sweeper as a django-q2 schedule: every minute (django-q2's shortest period).

For a shorter period run ``manage.py sweep_actions --loop`` beside the cluster.
"""

from django.db import migrations

NAME = "conveyor-sweep-actions"


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={"func": "executions.tasks.sweep", "schedule_type": "I", "minutes": 1,
                  "repeats": -1},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0002_groups"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create, remove)]
