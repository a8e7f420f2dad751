"""The indexes executions.dora reads now that each figure is a query of PipelineExecution
alone (see the model's comments): the counted executions' covering index and the change
failures' small one; ``executions_pe_failed_idx`` served the join with the stage
executions that migration 0012 made unnecessary."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('executions', '0012_execution_dora_columns'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='pipelineexecution',
            name='executions_pe_failed_idx',
        ),
        migrations.AddIndex(
            model_name='pipelineexecution',
            index=models.Index(condition=models.Q(('status__in', ['Failed', 'Succeeded'])), fields=['pipeline', 'ended_at'], include=('status', 'execution_type', 'entered_last_stage', 'committed_at', 'id'), name='executions_pe_counted_idx'),
        ),
        migrations.AddIndex(
            model_name='pipelineexecution',
            index=models.Index(condition=models.Q(('entered_last_stage', True), ('execution_type', 'STANDARD'), ('status', 'Failed')), fields=['pipeline', 'ended_at'], name='executions_pe_failure_idx'),
        ),
    ]
