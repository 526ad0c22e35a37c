from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "crm_console.customers"
    label = "customers"
    verbose_name = "Customers"
