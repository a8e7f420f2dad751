"""Every pipeline belongs to a pipeline group: the existing ones to "default"
(teams 0002 grants today's global role groups their roles on it)."""

import django.db.models.deletion
from django.db import migrations, models

import teams.services


def into_default(apps, schema_editor):
    PipelineGroup = apps.get_model("teams", "PipelineGroup")
    Pipeline = apps.get_model("pipelines", "Pipeline")
    default = PipelineGroup.objects.get(name="default")
    Pipeline.objects.filter(group__isnull=True).update(group=default)


class Migration(migrations.Migration):

    dependencies = [
        ("pipelines", "0009_build_project_network"),
        ("teams", "0002_default_group"),
    ]

    operations = [
        migrations.AddField(
            model_name="pipeline",
            name="group",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="pipelines", to="teams.pipelinegroup"),
        ),
        migrations.RunPython(into_default, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="pipeline",
            name="group",
            field=models.ForeignKey(default=teams.services.default_group_id,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name="pipelines", to="teams.pipelinegroup"),
        ),
    ]
