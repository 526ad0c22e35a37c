from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "crm_console.training"
    label = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        # the nightly retrain / evaluate entries live with the code they run (training/schedule.py)
        from django.conf import settings

        from crm_console.celery import app
        from crm_console.training.schedule import BEAT_SCHEDULE

        schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
        if isinstance(schedule, dict):
            for name, entry in BEAT_SCHEDULE.items():
                schedule.setdefault(name, entry)
        app.conf.beat_schedule = {**BEAT_SCHEDULE, **(app.conf.beat_schedule or {})}
