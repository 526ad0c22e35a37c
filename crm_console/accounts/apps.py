from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "crm_console.accounts"
    label = "accounts"
    verbose_name = "Users and roles"
