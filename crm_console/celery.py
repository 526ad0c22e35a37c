"""Celery app: three queues so long training never delays decisions.

`training` (train / evaluate / promote), `decisions` (batch campaign runs, explanations) and
`default`. Tasks ack late and are rejected back to the queue if the worker dies, so a killed
worker loses no work; tasks are written to be idempotent because of that.
"""

import gc
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")

app = Celery("crm_console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("training"), Queue("decisions"))
app.conf.task_routes = {
    "crm_console.training.tasks.*": {"queue": "training"},
    "crm_console.decisioning.tasks.*": {"queue": "decisions"},
}
app.autodiscover_tasks()


def beat_entries_add(entries: dict) -> None:
    """Register an app's beat entries (each app keeps its schedule beside the tasks it runs):
    into settings.CELERY_BEAT_SCHEDULE where it is a dict, and into the app's beat_schedule;
    entries already configured win."""
    from django.conf import settings

    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
    if isinstance(schedule, dict):
        for name, entry in entries.items():
            schedule.setdefault(name, entry)
    app.conf.beat_schedule = {**entries, **(app.conf.beat_schedule or {})}


@app.task(name="crm_console.ping")
def ping(value: int) -> int:
    """Round trip used by health checks and the worker tests."""
    return value + 1


@worker_process_init.connect
def freeze_loaded_objects(**kwargs) -> None:
    """A worker process has imported Django, torch and the agents: move those long-lived objects
    out of the garbage collector's full passes, which otherwise walk them again in the middle of
    a batch run (a quarter of a second per pass)."""
    gc.collect()
    gc.freeze()


@after_setup_logger.connect
@after_setup_task_logger.connect
def withhold_database_error_text(logger, **kwargs) -> None:
    """A worker logs through Celery's own handlers, not the settings' LOGGING: give them the same
    filter, so a failed task's database error does not write row data to the log."""
    from crm_console.log_filters import DatabaseErrorDetailFilter

    for handler in logger.handlers:
        if not any(isinstance(f, DatabaseErrorDetailFilter) for f in handler.filters):
            handler.addFilter(DatabaseErrorDetailFilter())
