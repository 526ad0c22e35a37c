"""The Django admin: for admins only, and read-only wherever the console writes through a service.

Marketers and compliance reviewers work in the console, whose services validate, write and audit
every change. The admin would let them bypass all three - undo an erasure, flip a withdrawn
consent to granted, read customers' emails and the whole audit log - so the site opens to the
Admin role only (staff status follows that role: accounts.services.user_staff_sync), and the
models the console writes through a service are registered with `ReadOnlyAdmin`.
"""

from __future__ import annotations

from functools import update_wrapper

from django.contrib import admin
from django.core.exceptions import PermissionDenied

from crm_console.accounts.roles import ADMIN, has_role


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Next-best-action console: admin"

    def has_permission(self, request) -> bool:
        """Admins only: a staff flag without the Admin role (set by hand, say) is not enough."""
        user = request.user
        return user.is_active and user.is_staff and has_role(user, ADMIN)

    def admin_view(self, view, cacheable=False):
        """A logged-in user who may not use the admin gets 403, not the login page (the console's
        login would send them straight back here)."""
        checked = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return checked(request, *args, **kwargs)

        return update_wrapper(inner, checked)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records the console writes through a service (which validates and audits) or that
    are proof (consent, erasures, the audit trail): admins may read them here, never write."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline:
    """ReadOnlyAdmin's rule for an inline (mix in before TabularInline / StackedInline)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
