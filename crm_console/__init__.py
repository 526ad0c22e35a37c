"""The Django project of the next-best-action console."""

from crm_console.celery import app as celery_app

__all__ = ("celery_app",)
