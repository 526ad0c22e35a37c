"""Training runs in the admin, read-only: training.services queues, cancels and audits them."""

from django.contrib import admin

from crm_console.accounts.admin_site import ReadOnlyAdmin
from crm_console.training.models import TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "algorithm", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status", "algorithm", "campaign"]
