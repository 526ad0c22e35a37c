from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "crm_console.dashboards"
    label = "dashboards"
    verbose_name = "Dashboards"

    def ready(self) -> None:
        # the dashboards' cache warm-up runs on the beat, beside the task (dashboards/tasks.py)
        from crm_console.celery import beat_entries_register
        from crm_console.dashboards.tasks import BEAT_SCHEDULE

        beat_entries_register(BEAT_SCHEDULE)
