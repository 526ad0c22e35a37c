"""Campaign set-up in the admin, read-only: the console's forms write it through campaigns.services,
which validate the whole campaign and audit every change."""

from django.contrib import admin

from crm_console.accounts.admin_site import ReadOnlyAdmin, ReadOnlyInline
from crm_console.campaigns.models import (
    Action, Campaign, ChannelCap, ContactPolicy, RewardWeights, SuppressionEntry,
)


class ActionInline(ReadOnlyInline, admin.TabularInline):
    model = Action
    extra = 0
    fields = ["channel", "offer", "variant", "send_window", "cost", "enabled"]


class RewardWeightsInline(ReadOnlyInline, admin.StackedInline):
    model = RewardWeights


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["name", "status", "objective", "holdout_share", "contact_policy", "updated_at"]
    list_filter = ["status", "objective"]
    search_fields = ["name"]
    inlines = [RewardWeightsInline, ActionInline]


@admin.register(Action)
class ActionAdmin(ReadOnlyAdmin):
    list_display = ["label", "campaign", "channel", "offer", "send_window", "cost", "enabled"]
    list_filter = ["campaign", "channel", "offer", "send_window", "enabled"]


class ChannelCapInline(ReadOnlyInline, admin.TabularInline):
    model = ChannelCap
    extra = 0


@admin.register(ContactPolicy)
class ContactPolicyAdmin(ReadOnlyAdmin):
    list_display = ["name", "overall_max_contacts", "overall_window_days", "min_gap_hours",
                    "quiet_hours_start", "quiet_hours_end", "updated_at"]
    inlines = [ChannelCapInline]


@admin.register(SuppressionEntry)
class SuppressionEntryAdmin(ReadOnlyAdmin):
    list_display = ["fingerprint", "contact_policy", "reason", "added_at"]
    list_filter = ["contact_policy"]


@admin.register(RewardWeights)
class RewardWeightsAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "revenue", "unsubscribe", "churn", "contact_cost", "updated_at"]


@admin.register(ChannelCap)
class ChannelCapAdmin(ReadOnlyAdmin):
    list_display = ["contact_policy", "channel", "max_contacts", "window_days", "consent_required"]
