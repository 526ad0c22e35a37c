from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "crm_console.dashboards"
    label = "dashboards"
    verbose_name = "Dashboards"
