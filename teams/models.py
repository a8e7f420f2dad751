"""Pipeline groups: every pipeline belongs to one; a group grants roles to people.

A ``RoleGrant`` gives one role on one group to one user or to one Django group
(all its members). What each role allows is ``teams.choices.ROLE_ACTS``; who may
do what is answered by ``teams.access`` alone (docs/security.md).
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from teams.choices import Role


class PipelineGroup(models.Model):
    """A named set of pipelines with the roles people hold on them."""

    name = models.CharField(max_length=100, unique=True, validators=[
        models.fields.validators.RegexValidator(
            r"^[A-Za-z0-9.@_-]{1,100}$", "Use 1 to 100 characters: letters, digits and . @ _ -")])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoleGrant(models.Model):
    """One role on one pipeline group, held by a user or by a Django group's members."""

    pipeline_group = models.ForeignKey(PipelineGroup, on_delete=models.CASCADE,
                                       related_name="grants")
    role = models.CharField(max_length=16, choices=Role.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.CASCADE, related_name="pipeline_roles")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="pipeline_roles")

    class Meta:
        ordering = ["pipeline_group", "role", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False, group__isnull=True)
                           | Q(user__isnull=True, group__isnull=False)),
                name="teams_rolegrant_user_or_group"),
            models.UniqueConstraint(fields=["pipeline_group", "role", "user"],
                                    condition=Q(user__isnull=False),
                                    name="teams_rolegrant_unique_user"),
            models.UniqueConstraint(fields=["pipeline_group", "role", "group"],
                                    condition=Q(group__isnull=False),
                                    name="teams_rolegrant_unique_group"),
        ]
        # teams.access reads the grants of one user (own ∪ groups'): both FKs are
        # indexed by Django already.

    def __str__(self) -> str:
        holder = f"user {self.user}" if self.user_id else f"group {self.group}"
        return f"{self.role} of {self.pipeline_group} for {holder}"
