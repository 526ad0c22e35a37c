"""Shared fixtures: one user per role, logged-in clients, and real-stack switches."""

from __future__ import annotations

import importlib
import os
import socket

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm_console.accounts.roles import ADMIN, COMPLIANCE_REVIEWER, MARKETER, ROLES
from tests.factories import UserFactory

REAL_STACK = bool(os.environ.get("REDIS_URL")) and settings.DATABASES["default"]["ENGINE"].endswith(
    "postgresql"
)
needs_real_stack = pytest.mark.skipif(
    not REAL_STACK,
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: run .ci/run, which sets them up",
)

CLOSED_REDIS = "redis://127.0.0.1:6390/0"
"""A Redis URL where nothing listens: Redis down."""


def redis_caches(location: str) -> dict:
    """The production cache settings (timeouts included) with Redis at `location`."""
    return {**settings.CACHES, "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location,
        "OPTIONS": settings.REDIS_CACHE_OPTIONS}}


@pytest.fixture
def silent_redis():
    """The URL of a TCP server that accepts connections and never answers: a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


# Data migrations that grant permissions, re-run after a transactional test flushed their rows.
ROLE_MIGRATIONS = (
    ("crm_console.accounts.migrations.0001_roles", "create_roles"),
    ("crm_console.api.migrations.0002_admin_manages_integrations", "grant"),
    ("crm_console.campaigns.migrations.0004_offers_and_send_windows_as_records", "grant_vocabulary"),
    ("crm_console.campaigns.migrations.0006_channels_as_records", "grant_channels"),
    ("crm_console.training.migrations.0002_customer_response_model", "grant"),
    ("crm_console.decisioning.migrations.0006_batch_runs", "grant"),
)


def roles_ensure() -> None:
    """Recreate the role groups if a transactional test (which flushes tables) removed them.

    Each data migration runs against the models as they were at that migration, like `migrate` does.
    """
    if Group.objects.filter(name__in=ROLES).count() == len(ROLES):
        return
    loader = MigrationExecutor(connection).loader
    for module, function in ROLE_MIGRATIONS:
        app_label, name = module.split(".")[1], module.rsplit(".", 1)[1]
        state_apps = loader.project_state((app_label, name)).apps
        getattr(importlib.import_module(module), function)(state_apps, None)


@pytest.fixture
def roles(db):
    roles_ensure()


@pytest.fixture
def marketer(roles):
    return UserFactory(username="marketer", role=MARKETER)


@pytest.fixture
def reviewer(roles):
    return UserFactory(username="reviewer", role=COMPLIANCE_REVIEWER)


@pytest.fixture
def admin_user(roles):
    return UserFactory(username="admin", role=ADMIN)


def _client_for(client, user):
    # force_login: Client.login() authenticates without a request, which the login throttle
    # (django-axes) refuses; logging in through the form is tested in tests/console/accounts
    client.force_login(user)
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


@pytest.fixture(autouse=True)
def celery_eager_unless_worker(request):
    """Tasks run inline unless the test asks for the real worker (marker `worker`).

    With REDIS_URL set (CI), Celery is not eager, so a console test calling `.delay(...).get()`
    would otherwise wait for a worker that is not there.
    """
    if request.node.get_closest_marker("worker"):
        yield
        return
    from crm_console.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture(autouse=True)
def vocabulary_read_afresh(request):
    """Each test reads the workspace's channels, offers and send windows from its own database: a
    test's rolled-back edits must not linger in the process's cached vocabulary. A transactional
    test flushes every table when it ends, so the test after it (either kind) starts by putting
    back the seeded channels, offers, windows and roles, as `migrate` leaves them."""
    from crm_console.campaigns import vocabulary as vocabulary_module
    from crm_console.campaigns.vocabulary import VOCABULARY_CHANGED
    from crm_console.campaigns.services import vocabulary_defaults_ensure

    marker = request.node.get_closest_marker("django_db")
    transactional = ("transactional_db" in request.fixturenames
                     or "live_server" in request.fixturenames
                     or (marker is not None and marker.kwargs.get("transaction")))
    if transactional:
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in request.fixturenames:
        request.getfixturevalue("db")
    if transactional or marker is not None or "db" in request.fixturenames:
        vocabulary_defaults_ensure()
        roles_ensure()
    VOCABULARY_CHANGED.forget()
    vocabulary_module._vocabulary = None
    yield
    vocabulary_module._vocabulary = None
