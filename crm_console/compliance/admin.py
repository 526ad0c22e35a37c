from django.contrib import admin

from crm_console.compliance.models import AuditEntry, DecisionReview, ErasureRecord


@admin.register(DecisionReview)
class DecisionReviewAdmin(admin.ModelAdmin):
    list_display = ["decision", "verdict", "reviewer", "created_at"]
    list_filter = ["verdict"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "verb", "target_type", "target_id"]
    list_filter = ["verb", "target_type"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ErasureRecord)
class ErasureRecordAdmin(admin.ModelAdmin):
    list_display = ["customer_id_erased", "requested_by", "reason", "erased_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False
