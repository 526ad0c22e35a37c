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


@pytest.fixture
def broker():
    """A Celery client on the worker subprocesses' Redis database, its queues emptied first."""
    from celery import Celery

    from tests.integration.worker_processes import isolated_redis_url

    app = Celery("integration-test", broker=isolated_redis_url())
    with app.connection_for_write() as connection:  # start from empty queues
        for queue in ("training", "decisions", "default"):
            connection.default_channel.client.delete(queue)
        connection.default_channel.client.delete("unacked", "unacked_index")
    yield app
    app.close()


@pytest.fixture
def workers(tmp_path):
    """Start worker subprocesses (`workers()`, or `workers(env={...})`); all stopped at the end."""
    from tests.integration.worker_processes import WorkerProcess

    started: list[WorkerProcess] = []

    def start(env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker-{len(started)}.log", tmp_path / "checkpoints",
                               name=f"worker{len(started)}", env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
