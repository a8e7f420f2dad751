"""The admin, narrowed by pipeline group: one mixin for every admin of pipeline data.

Model permissions still open the admin's pages (staff with the role groups' model
permissions, as before); on top of them, for anyone but a superuser or an
administrator, ``PipelineScopedAdmin``:

1. lists only the rows of pipelines the user may view (``teams.access``), so a
   row of another group is not found (the admin's own 404-like redirect);
2. allows changing or deleting a row only where the user may ``change_act``
   (``own`` by default) on its pipeline.

``pipeline_path`` is the lookup from the model to its Pipeline ("" for Pipeline).
"""

from __future__ import annotations

from teams.access import is_administrator, pipeline_allows, pipelines_q
from teams.choices import Act


class PipelineScopedAdmin:
    pipeline_path = "pipeline"
    change_act = Act.OWN

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_administrator(request.user):
            return queryset
        prefix = f"{self.pipeline_path}__" if self.pipeline_path else ""
        return queryset.filter(pipelines_q(request.user, Act.VIEW, prefix))

    def pipeline_of(self, obj):
        for part in (self.pipeline_path.split("__") if self.pipeline_path else []):
            obj = getattr(obj, part, None)
        return obj

    def _allows(self, request, obj) -> bool:
        if obj is None or is_administrator(request.user):
            return True
        pipeline = self.pipeline_of(obj)
        # A row of no pipeline (a rule for every pipeline): the administrators'.
        return pipeline is not None and pipeline_allows(request.user, pipeline, self.change_act)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._allows(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._allows(request, obj)
