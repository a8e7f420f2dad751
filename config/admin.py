"""The admin site's name, and API tokens in the admin, per user: each user's page lists
its tokens (no key is stored to show: knox keeps a digest) and deleting one revokes it.
The tokens' own admin lists and revokes them too, but makes none: a key is given out by
``manage.py create_api_token`` only."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from knox.admin import AuthTokenAdmin
from knox.models import AuthToken

# Django's default header reads "Django administration": this is Conveyor's.
admin.site.site_header = "Conveyor administration"
admin.site.site_title = "Conveyor admin"


class AuthTokenInline(admin.TabularInline):
    model = AuthToken
    fields = ("token_key", "created", "expiry")
    readonly_fields = fields
    extra = 0
    can_delete = True
    verbose_name = "API token (delete to revoke)"
    verbose_name_plural = "API tokens (create one with manage.py create_api_token)"

    def has_add_permission(self, request, obj=None):
        return False


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserWithTokensAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, AuthTokenInline]


# knox registers its own AuthToken admin (importing knox.admin above has done it),
# whose Add page makes a token and shows its key only in a one-off message.
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class RevokeOnlyAuthTokenAdmin(AuthTokenAdmin):
    def has_add_permission(self, request):
        return False
