from django.apps import AppConfig


class SiteConfig(AppConfig):
    """Site-wide pieces with no app of their own: API tokens (admin, command), sign-in."""

    name = "config"
    label = "site"
    verbose_name = "Site"
