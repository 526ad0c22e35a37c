"""Celery app: three queues so long training never delays decisions.

`training` (train / evaluate / promote), `decisions` (batch campaign runs, explanations) and
`default`. Tasks ack late and are rejected back to the queue if the worker dies, so a killed
worker loses no work; tasks are written to be idempotent because of that.
"""

import gc
import os
from importlib import import_module

from celery import Celery, Task
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


def beat_entries_register(entries: dict[str, dict]) -> None:
    """Add an app's beat entries (kept with the code they run) to the schedule; the settings'
    CELERY_BEAT_SCHEDULE wins where it names the same entry."""
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


def task_named(name: str) -> Task:
    """The task registered as `name` (its module's path and function, as routed above).

    Services queue tasks by name rather than import them: a tasks module imports the services
    it runs, so importing it back from a service would close an import circle. A process that
    has not imported the module yet (the web process) imports it here."""
    if name not in app.tasks:
        import_module(name.rsplit(".", 1)[0])
    return app.tasks[name]


def task_start(task: Task | str, *args) -> None:
    """Queue a long task (training, fitting a model, an import) for a worker; on the embedded
    default (eager Celery, no worker) run it in a thread instead, so the page that started it
    returns at once and its progress bar moves. Call it after the transaction commits."""
    if isinstance(task, str):
        task = task_named(task)
    if not app.conf.task_always_eager:
        task.delay(*args)
        return
    import threading

    from django.db import connections

    def work() -> None:
        try:
            task.apply(args=list(args))
        finally:
            connections.close_all()

    threading.Thread(target=work, name=f"{task.name.rsplit('.', 1)[-1]}-{args}",
                     daemon=True).start()
