"""The Django admin is for admins only: marketers and reviewers use the console and its services."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm_console.accounts.roles import ADMIN, COMPLIANCE_REVIEWER, MARKETER
from crm_console.accounts.services import user_role_set
from crm_console.demo_workspace import demo_users_ensure
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADMIN_PAGES = ["/admin/", "/admin/customers/customer/", "/admin/compliance/auditentry/",
               "/admin/customers/consent/", "/admin/auth/user/"]
BEFORE_STAFF_FOLLOWS_ROLE = [("accounts", "0001_roles")]


@pytest.mark.parametrize("path", ADMIN_PAGES)
@pytest.mark.parametrize("role", ["marketer", "reviewer"])
def test_marketers_and_reviewers_are_refused_the_admin(client, request, role, path):
    client.force_login(request.getfixturevalue(role))
    assert client.get(path).status_code == 403


def test_a_staff_flag_without_the_admin_role_does_not_open_the_admin(client, reviewer):
    reviewer.is_staff = True
    reviewer.save()
    client.force_login(reviewer)
    assert client.get("/admin/customers/consent/").status_code == 403


def test_an_admin_opens_the_admin(admin_client_role):
    assert admin_client_role.get("/admin/").status_code == 200


@pytest.mark.parametrize(("role", "staff"), [(MARKETER, False), (COMPLIANCE_REVIEWER, False),
                                             (ADMIN, True)])
def test_only_the_admin_role_makes_a_user_staff(roles, role, staff):
    user = get_user_model().objects.create_user("someone", is_staff=not staff)
    assert user_role_set(user=user, role=role).is_staff is staff


def test_demo_users_other_than_admin_are_not_staff(roles):
    demo_users_ensure()
    staff = dict(get_user_model().objects.values_list("username", "is_staff"))
    assert staff == {"marketer": False, "reviewer": False, "admin": True}


def test_a_user_given_a_role_in_the_admin_gets_the_staff_status_of_that_role(admin_client_role):
    user = UserFactory(username="newcomer", role=ADMIN)
    form = {"username": "newcomer", "email": "", "first_name": "", "last_name": "",
            "is_active": "on", "is_staff": "on",
            "groups": [Group.objects.get(name=MARKETER).pk],
            "date_joined_0": "2026-01-01", "date_joined_1": "10:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "10:00:00"}
    response = admin_client_role.post(f"/admin/auth/user/{user.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == [MARKETER]
    assert user.is_staff is False


@pytest.mark.django_db(transaction=True)
def test_the_migration_takes_staff_status_from_everyone_but_admins():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_STAFF_FOLLOWS_ROLE)
    old = executor.loader.project_state(BEFORE_STAFF_FOLLOWS_ROLE).apps
    user_model, group_model = old.get_model("auth", "User"), old.get_model("auth", "Group")
    for username, role in (("m", MARKETER), ("r", COMPLIANCE_REVIEWER), ("a", ADMIN)):
        user = user_model.objects.create(username=username, is_staff=True)
        user.groups.add(group_model.objects.get(name=role))
    user_model.objects.create(username="root", is_staff=True, is_superuser=True)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    staff = dict(get_user_model().objects.values_list("username", "is_staff"))
    assert staff == {"m": False, "r": False, "a": True, "root": True}
