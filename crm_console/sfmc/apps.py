from django.apps import AppConfig


class SfmcConfig(AppConfig):
    name = "crm_console.sfmc"
    label = "sfmc"
    verbose_name = "Marketing Cloud Journey Builder"
