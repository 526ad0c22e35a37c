from django.contrib import admin

from crm_console.training.models import TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "algorithm", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status", "algorithm", "campaign"]
    readonly_fields = ["status", "progress", "current_return", "eta_seconds", "learning_curve",
                       "report", "error", "celery_task_id", "policy_version", "started_at",
                       "finished_at"]
