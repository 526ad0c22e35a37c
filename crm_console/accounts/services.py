"""Writes for users: their role, and the staff status that follows it."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from crm_console.accounts.roles import ADMIN, has_role


@transaction.atomic
def user_role_set(*, user: AbstractUser, role: str) -> AbstractUser:
    """Give the user exactly this role (a group); staff status follows it."""
    user.groups.set([Group.objects.get(name=role)])
    return user_staff_sync(user=user)


def user_staff_sync(*, user: AbstractUser) -> AbstractUser:
    """Staff status follows the Admin role (or superuser): the Django admin is for admins only,
    marketers and reviewers work in the console, whose services check and audit every change."""
    is_staff = has_role(user, ADMIN)
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])
    return user
