from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "crm_console.training"
    label = "training"
    verbose_name = "Training"
