from django.apps import AppConfig


class DecisioningConfig(AppConfig):
    name = "crm_console.decisioning"
    label = "decisioning"
    verbose_name = "Decisioning"

    def ready(self) -> None:
        from crm_console.celery import beat_entries_register
        from crm_console.decisioning import signals  # noqa: F401 (connects the receivers)
        from crm_console.decisioning.schedule import BEAT_SCHEDULE

        beat_entries_register(BEAT_SCHEDULE)
