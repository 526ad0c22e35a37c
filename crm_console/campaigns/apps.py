from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "crm_console.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"
