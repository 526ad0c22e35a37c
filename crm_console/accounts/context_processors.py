"""Template context: the user's roles and the permissions the navigation needs."""

from django.http import HttpRequest

from crm_console.accounts.roles import role_names


def roles(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": []}
    return {
        "user_roles": role_names(user),
        "can_edit_campaigns": user.has_perm("campaigns.change_campaign"),
        "can_edit_contact_policy": user.has_perm("campaigns.change_contactpolicy"),
        "can_review": user.has_perm("compliance.add_decisionreview"),
    }
