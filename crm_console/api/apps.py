from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "crm_console.api"
    label = "api"
    verbose_name = "API"
