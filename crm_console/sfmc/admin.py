from django.contrib import admin

from crm_console.sfmc.models import SfmcActivity, SfmcCall, SfmcJourney


@admin.register(SfmcActivity)
class SfmcActivityAdmin(admin.ModelAdmin):
    list_display = ["campaign", "name", "branch_by", "unknown_contact", "updated_at"]
    exclude = ["jwt_signing_secret"]  # set on the campaign's Marketing Cloud page, never shown
    readonly_fields = ["updated_by"]


@admin.register(SfmcJourney)
class SfmcJourneyAdmin(admin.ModelAdmin):
    list_display = ["activity", "journey_id", "journey_version", "last_event", "last_event_at"]
    readonly_fields = [f.name for f in SfmcJourney._meta.fields]


@admin.register(SfmcCall)
class SfmcCallAdmin(admin.ModelAdmin):
    list_display = ["activity", "endpoint", "received_at", "status_code", "branch", "decision"]
    list_filter = ["endpoint", "status_code"]
    readonly_fields = [f.name for f in SfmcCall._meta.fields]
