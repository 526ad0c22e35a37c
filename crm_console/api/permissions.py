"""Role checks for API views: reading needs a login, writing needs the model permission."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class ModelPermissionForWrites(BasePermission):
    """Any logged-in user may read; writes need `view.write_permission` (e.g. campaigns.add_campaign)."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        return request.user.has_perm(view.write_permission)
