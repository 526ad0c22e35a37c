from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "crm_console.training"
    label = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        # the nightly retrain / evaluate entries live with the code they run (training/schedule.py)
        from crm_console.celery import beat_entries_add
        from crm_console.training.schedule import BEAT_SCHEDULE

        beat_entries_add(BEAT_SCHEDULE)
