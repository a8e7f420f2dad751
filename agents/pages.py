"""The Agents page (staff): every agent, its labels, version, last contact and current job
(named only when the pipeline is one the staff member may view: teams.access)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone

from agents.models import Agent
from executions import engine
from teams.access import pipeline_allows
from teams.choices import Act

app_name = "agents"


@login_required
def agent_list(request):
    """Agents by name (staff only); one that missed two leases of contact shows as offline."""
    if not request.user.is_staff:
        raise PermissionDenied("The Agents page is for staff.")
    agents = list(Agent.objects.select_related(
        "key", "action_execution", "action_execution__execution",
        "action_execution__execution__pipeline"))
    offline_before = timezone.now() - timedelta(seconds=2 * engine.lease_seconds())
    rows = []
    for agent in agents:
        ae = agent.action_execution
        link = None
        busy = ae is not None and ae.status == "InProgress"
        if busy and not pipeline_allows(request.user, ae.execution.pipeline, Act.VIEW):
            # Agents are shared by every group; what they run is its pipeline's own.
            ae, busy = None, "another group's pipeline"
        if busy is True:
            link = reverse("dashboard:action", kwargs={
                "name": ae.execution.pipeline.name, "number": ae.execution.number,
                "stage": ae.stage_name, "action": ae.action_name})
        else:
            ae = None
        rows.append({"agent": agent, "action": ae, "link": link, "busy": busy,
                     "online": bool(agent.last_seen_at and agent.last_seen_at >= offline_before
                                    and not agent.key.revoked)})
    return render(request, "agents/agents.html", {"rows": rows})


urlpatterns = [path("", agent_list, name="list")]
