"""A real Celery worker against the real Redis broker, started in-process for the test session."""

from __future__ import annotations

import pytest

from tests.conftest import REAL_STACK


@pytest.fixture(scope="session")
def celery_worker_real(django_db_setup, django_db_blocker):
    """A worker thread consuming the real Redis queues (not eager mode)."""
    if not REAL_STACK:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL: run .ci/run")
    from celery.contrib.testing.worker import start_worker

    from crm_console.celery import app

    app.conf.task_always_eager = False
    with django_db_blocker.unblock(), start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False,
        queues=["default", "training", "decisions"], shutdown_timeout=30,
    ) as worker:
        yield worker
