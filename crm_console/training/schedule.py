"""Celery beat entries of the training loop (merged into the app's beat_schedule in apps.ready).

Nightly at 02:30 UTC every live campaign retrains on the day's logged decisions and is evaluated
off-policy; a candidate goes live only through the guardrail. Every ten minutes, runs whose worker
died are handed to a worker again and resume from their checkpoint.
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "training-nightly-retrain": {
        "task": "crm_console.training.tasks.nightly_retrain",
        "schedule": crontab(hour=2, minute=30),
        "kwargs": {"budget_steps": 200_000, "auto_promote": True},
        "options": {"queue": "training"},
    },
    "training-recover-stale-runs": {
        "task": "crm_console.training.tasks.recover_stale_runs",
        "schedule": crontab(minute="*/10"),
        "options": {"queue": "training"},
    },
}
