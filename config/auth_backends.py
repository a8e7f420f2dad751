"""Django's ModelBackend, with a user's permissions read in one precompiled query.

Every page and API call checks the caller's model permissions. Django's
``ModelBackend`` reads them with two queries (the user's own, then its groups')
that the ORM builds and compiles again on each request: about 3 ms of CPU per
request, more than some whole reads cost. This backend answers
``get_all_permissions`` with one query (own ∪ groups') compiled once per
process (``executions.prepared``), cached on the user object for the request
exactly as ``ModelBackend`` caches it. Inactive, anonymous and superusers, object
permissions and authentication are ``ModelBackend``'s own.
"""

from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q

from executions.prepared import Prepared

_PERMISSIONS = Prepared(lambda user_id: Permission.objects
                        .filter(Q(user__id=user_id) | Q(group__user__id=user_id))
                        .order_by().values_list("content_type__app_label", "codename"))


class ModelBackend(DjangoModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if (not user_obj.is_active or user_obj.is_anonymous or obj is not None
                or user_obj.is_superuser):
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = {f"{app_label}.{codename}"
                                    for app_label, codename in _PERMISSIONS(user_obj.pk)}
        return user_obj._perm_cache
