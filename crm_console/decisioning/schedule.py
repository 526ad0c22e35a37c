"""Celery beat entries of the decision side (merged into the app's beat_schedule in apps.ready).

Every ten minutes each campaign's new outcome events are attributed to their decisions and those
decisions priced, so the dashboards, the nightly retrain and off-policy evaluation read rewards
whether or not anything else asked for them (ingestion and training price too: this is the floor).
Every hour, trials whose days are over and whose verdict refuses are stopped
(`trials.trials_conclude`).
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "decisioning-price-outcomes": {
        "task": "crm_console.decisioning.tasks.price_outcomes_everywhere",
        "schedule": crontab(minute="*/10"),
        "options": {"queue": "decisions"},
    },
    "decisioning-conclude-trials": {
        "task": "crm_console.decisioning.tasks.conclude_trials",
        "schedule": crontab(minute=17),
        "options": {"queue": "decisions"},
    },
}
