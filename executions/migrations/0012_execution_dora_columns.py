"""The DORA figures' copies on PipelineExecution (``committed_at``, ``entered_last_stage``:
``executions.dora_columns``), filled on every existing execution in batches of 5,000 ids,
each batch committed on its own (hence not atomic: a failure leaves the columns added
and the batches before it filled; running the migration again fills them all)."""

from django.db import migrations, models


def fill(apps, schema_editor):
    from executions.dora_columns import backfill

    backfill(apps.get_model("executions", "PipelineExecution"),
             apps.get_model("executions", "SourceRevision"),
             apps.get_model("executions", "StageExecution"))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('executions', '0011_actionexecution_run_on_agents'),
    ]

    operations = [
        migrations.AddField(
            model_name='pipelineexecution',
            name='committed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='pipelineexecution',
            name='entered_last_stage',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
