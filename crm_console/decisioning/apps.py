from django.apps import AppConfig


class DecisioningConfig(AppConfig):
    name = "crm_console.decisioning"
    label = "decisioning"
    verbose_name = "Decisioning"

    def ready(self) -> None:
        from crm_console.decisioning import signals  # noqa: F401 (connects the receivers)
