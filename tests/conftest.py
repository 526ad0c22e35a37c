"""Shared fixtures: one user per role, logged-in clients, and real-stack switches."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from crm_console.accounts.roles import ADMIN, COMPLIANCE_REVIEWER, MARKETER
from tests.factories import PASSWORD, UserFactory

REAL_STACK = bool(os.environ.get("REDIS_URL")) and settings.DATABASES["default"]["ENGINE"].endswith(
    "postgresql"
)
needs_real_stack = pytest.mark.skipif(
    not REAL_STACK,
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: run .ci/run, which sets them up",
)


@pytest.fixture
def marketer(db):
    return UserFactory(username="marketer", role=MARKETER)


@pytest.fixture
def reviewer(db):
    return UserFactory(username="reviewer", role=COMPLIANCE_REVIEWER)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", role=ADMIN)


def _client_for(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def marketer_client(client, marketer):
    return _client_for(client, marketer)


@pytest.fixture
def reviewer_client(client, reviewer):
    return _client_for(client, reviewer)


@pytest.fixture
def admin_client_role(client, admin_user):
    return _client_for(client, admin_user)
