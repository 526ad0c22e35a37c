from django.contrib import admin

from crm_console.customers.models import Consent, Customer, Event


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0
    fields = ["channel", "granted", "source", "recorded_at"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "time_zone", "created_at", "erased_at"]
    search_fields = ["external_id"]
    readonly_fields = ["profile_state", "profile_updated_at", "erased_at"]
    inlines = [ConsentInline]


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["customer", "channel", "granted", "source", "recorded_at"]
    list_filter = ["channel", "granted"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: the event log is append-only."""

    list_display = ["message_id", "customer", "type", "name", "timestamp", "decision"]
    list_filter = ["type", "name"]
    search_fields = ["message_id"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False
