"""Customers, consent and events in the admin, read-only: consent changes and erasure go through
the console's services (which apply and audit them), and the personal data (email, phone, name,
traits) leaves only through the audited data-subject export, so it is not shown here."""

from django.contrib import admin

from crm_console.accounts.admin_site import ReadOnlyAdmin, ReadOnlyInline
from crm_console.customers.models import Consent, Customer, Event


class ConsentInline(ReadOnlyInline, admin.TabularInline):
    model = Consent
    extra = 0
    fields = ["channel", "granted", "source", "recorded_at"]


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "time_zone", "created_at", "erased_at"]
    search_fields = ["external_id"]
    fields = ["external_id", "time_zone", "created_at", "profile_updated_at", "erased_at"]
    inlines = [ConsentInline]


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["customer", "channel", "granted", "source", "recorded_at"]
    list_filter = ["channel", "granted"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The event log is append-only."""

    list_display = ["message_id", "customer", "type", "name", "timestamp", "decision"]
    list_filter = ["type", "name"]
    search_fields = ["message_id"]
