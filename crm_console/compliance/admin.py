"""Compliance records in the admin, read-only for everyone: reviews, the audit trail and erasure
records are proof, written only by compliance.services."""

from django.contrib import admin

from crm_console.accounts.admin_site import ReadOnlyAdmin
from crm_console.compliance.models import AuditEntry, DecisionReview, ErasureRecord


@admin.register(DecisionReview)
class DecisionReviewAdmin(ReadOnlyAdmin):
    list_display = ["decision", "verdict", "reviewer", "created_at"]
    list_filter = ["verdict"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "verb", "target_type", "target_id"]
    list_filter = ["verb", "target_type"]


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyAdmin):
    list_display = ["customer_id_erased", "requested_by", "reason", "erased_at"]
