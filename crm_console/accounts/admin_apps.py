"""django.contrib.admin's app config with ConsoleAdminSite as `admin.site`.

In a module of its own: INSTALLED_APPS imports it before any model can be (admin_site needs them).
"""

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "crm_console.accounts.admin_site.ConsoleAdminSite"
