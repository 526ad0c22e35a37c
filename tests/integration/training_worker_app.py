"""The project's Celery app as a test worker subprocess runs it: real code, two test-only knobs.

`celery -A tests.integration.training_worker_app worker ...` - the app is crm_console.celery's; a
short Redis visibility timeout lets a restarted worker take back the message of a worker killed
with SIGKILL within seconds (in production it is an hour), and checkpoints are written every second
so a killed run has one to resume from. `TEST_CHUNK_SECONDS` holds each batch-run chunk's
transaction open that long after it decided, so a test can kill the worker mid-chunk.
"""

from __future__ import annotations

import os

from celery.signals import worker_ready

from crm_console.celery import app

app.conf.broker_transport_options = {
    "visibility_timeout": int(os.environ.get("TEST_VISIBILITY_TIMEOUT", "5"))}


@worker_ready.connect
def _checkpoint_often(**kwargs) -> None:
    from crm_console.training import services

    services.CHECKPOINT_SECONDS = float(os.environ.get("TEST_CHECKPOINT_SECONDS", "1"))



@worker_ready.connect
def _slow_chunks(**kwargs) -> None:
    seconds = float(os.environ.get("TEST_CHUNK_SECONDS", "0"))
    if not seconds:
        return
    import time

    from crm_console.decisioning import batch_runs

    decide = batch_runs._chunk_decide

    def decide_then_wait(chunk):
        decide(chunk)
        time.sleep(seconds)  # inside the chunk's transaction: decided, not yet committed

    batch_runs._chunk_decide = decide_then_wait


__all__ = ["app"]
