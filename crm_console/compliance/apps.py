from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "crm_console.compliance"
    label = "compliance"
    verbose_name = "Compliance"
