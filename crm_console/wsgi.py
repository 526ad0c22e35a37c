"""WSGI entry point (gunicorn crm_console.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
application = get_wsgi_application()
