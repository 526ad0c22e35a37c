"""Users in the admin: staff status is not set by hand, it follows the Admin role."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from crm_console.accounts.services import user_staff_sync

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class ConsoleUserAdmin(UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "is_staff"]

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)  # the groups are saved here
        user_staff_sync(user=form.instance)
