"""The three roles and what each may do, as Django groups of model permissions.

Marketers shape campaigns (catalogue, reward weights, training); compliance reviewers own contact
policies, consent, reviews and data-subject requests; admins may do everything, including forcing
a promotion past the guardrail. Every logged-in user can read.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

MARKETER = "Marketer"
COMPLIANCE_REVIEWER = "Compliance reviewer"
ADMIN = "Admin"
ROLES = (MARKETER, COMPLIANCE_REVIEWER, ADMIN)

# What each role may change is granted by the data migration accounts/0001_roles (a frozen copy,
# as migrations must not import code that later changes); view permissions go to every role.


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=roles).exists()


def role_names(user: AbstractBaseUser | AnonymousUser) -> list[str]:
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        return [ADMIN]
    return list(user.groups.values_list("name", flat=True))
