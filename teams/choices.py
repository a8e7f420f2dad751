"""The roles a pipeline group grants, and what each lets one do (docs/security.md).

owner ⊇ operator ⊇ viewer; reviewer ⊇ viewer. An owner does not review: deciding
an approval stays a separate duty from defining and running the pipeline.
"""

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    REVIEWER = "reviewer", "Reviewer"
    OWNER = "owner", "Owner"


class Act(models.TextChoices):
    """What a surface asks to do with a pipeline."""

    VIEW = "view", "View"
    OPERATE = "operate", "Operate (start, stop, retry, roll back, transitions)"
    REVIEW = "review", "Review (decide approvals)"
    OWN = "own", "Own (change the definition, its secrets and its group)"


# The acts each role allows.
ROLE_ACTS: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({Act.VIEW}),
    Role.OPERATOR: frozenset({Act.VIEW, Act.OPERATE}),
    Role.REVIEWER: frozenset({Act.VIEW, Act.REVIEW}),
    Role.OWNER: frozenset({Act.VIEW, Act.OPERATE, Act.OWN}),
}
ALL_ACTS = frozenset(Act.values)

# The pipeline group every pipeline starts in, and the Django groups that the
# migration grants its roles to (today's global role groups), so an installation
# that never makes a second group behaves as before.
DEFAULT_GROUP = "default"
DEFAULT_GRANTS = (("viewers", Role.VIEWER), ("operators", Role.OPERATOR),
                  ("reviewers", Role.REVIEWER), ("owners", Role.OWNER))
# Members of this Django group hold every role on every group, and manage groups.
ADMINISTRATORS = "administrators"
