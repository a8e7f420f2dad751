"""Model permissions for the pipelines API: reading needs ``view``, too.

DRF's ``DjangoModelPermissions`` lets any signed-in user read; here a GET needs
``pipelines.view_pipeline`` as well, so an outsider (signed in, in no group)
sees nothing. An anonymous caller gets 401 (TokenAuthentication, listed first,
supplies the ``WWW-Authenticate`` header that makes DRF answer 401, not 403).
"""

from rest_framework.permissions import DjangoModelPermissions


class PipelinePermissions(DjangoModelPermissions):
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def _queryset(self, view):
        # Every pipelines endpoint (versions included) is governed by the Pipeline
        # permissions, whatever model the view lists.
        from pipelines.models import Pipeline

        return Pipeline.objects.all()


class ConnectionPermissions(DjangoModelPermissions):
    """The connection model's permissions; reading needs ``view_connection``."""

    perms_map = PipelinePermissions.perms_map
