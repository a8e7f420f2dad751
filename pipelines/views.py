from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from pipelines.models import Pipeline


@login_required
def home(request):
    """The list of pipelines (the dashboard issue makes it live)."""
    pipelines = Pipeline.objects.all()
    if not request.user.has_perm("pipelines.view_pipeline"):
        pipelines = Pipeline.objects.none()
    return render(request, "pipelines/home.html", {"pipelines": pipelines})
