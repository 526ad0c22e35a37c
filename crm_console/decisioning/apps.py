from django.apps import AppConfig


class DecisioningConfig(AppConfig):
    name = "crm_console.decisioning"
    label = "decisioning"
    verbose_name = "Decisioning"
