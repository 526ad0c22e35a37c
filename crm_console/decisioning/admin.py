"""Policies, decisions and explanations in the admin, read-only: the decision loop and the
promotion guardrail write them."""

from django.contrib import admin

from crm_console.accounts.admin_site import ReadOnlyAdmin
from crm_console.decisioning.models import (
    BatchRun, BatchRunChunk, Decision, Explanation, PolicyTrial, PolicyVersion,
)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "version", "algorithm", "status", "created_at", "promoted_at"]
    list_filter = ["campaign", "status", "algorithm"]
    exclude = ["artifact"]


@admin.register(PolicyTrial)
class PolicyTrialAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "candidate", "share", "outcome", "started_at", "ended_at"]
    list_filter = ["campaign", "outcome"]
    list_select_related = ["campaign", "candidate"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "customer", "action", "propensity", "holdout", "status",
                    "decided_at"]
    list_filter = ["campaign", "holdout", "status", "policy_name"]
    list_select_related = ["campaign", "customer", "action"]


@admin.register(Explanation)
class ExplanationAdmin(ReadOnlyAdmin):
    list_display = ["decision", "method", "sentence", "computed_at"]


@admin.register(BatchRun)
class BatchRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "day", "status", "customers", "chunks_total", "created_at"]
    list_filter = ["campaign", "status"]


@admin.register(BatchRunChunk)
class BatchRunChunkAdmin(ReadOnlyAdmin):
    list_display = ["run", "number", "first_customer_id", "last_customer_id", "status",
                    "decisions", "delivered"]
    list_filter = ["status"]
