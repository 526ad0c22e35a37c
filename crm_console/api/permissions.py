"""Permission checks for API views: console users by role, integrations by scope."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class ModelPermissionForWrites(BasePermission):
    """Any logged-in user may read; writes need `view.write_permission` (e.g. campaigns.add_campaign)."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        return request.user.has_perm(view.write_permission)


class HasIntegrationScope(BasePermission):
    """The authenticated integration holds `view.required_scope` (403 otherwise)."""

    message = "This integration's token lacks the scope this operation needs."

    def has_permission(self, request, view) -> bool:
        integration = request.auth
        if integration is None or not hasattr(integration, "has_scope"):
            return False
        if not integration.has_scope(view.required_scope):
            self.message = f"This integration's token lacks the '{view.required_scope}' scope."
            return False
        return True
