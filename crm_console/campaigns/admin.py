from django.contrib import admin

from crm_console.campaigns import services

from crm_console.campaigns.models import (
    Action, Campaign, ChannelCap, ContactPolicy, RewardWeights, SuppressionEntry,
)


class ActionInline(admin.TabularInline):
    model = Action
    extra = 0
    fields = ["channel", "offer", "variant", "send_window", "cost", "enabled"]


class RewardWeightsInline(admin.StackedInline):
    model = RewardWeights
    can_delete = False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "objective", "holdout_share", "contact_policy", "updated_at"]
    list_filter = ["status", "objective"]
    search_fields = ["name"]
    inlines = [RewardWeightsInline, ActionInline]

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        services.campaign_builtins_ensure(campaign=form.instance)


@admin.register(Action)
class ActionAdmin(admin.ModelAdmin):
    list_display = ["label", "campaign", "channel", "offer", "send_window", "cost", "enabled"]
    list_filter = ["campaign", "channel", "offer", "send_window", "enabled"]


class ChannelCapInline(admin.TabularInline):
    model = ChannelCap
    extra = 0


@admin.register(ContactPolicy)
class ContactPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "overall_max_contacts", "overall_window_days", "min_gap_hours",
                    "quiet_hours_start", "quiet_hours_end", "updated_at"]
    inlines = [ChannelCapInline]


@admin.register(SuppressionEntry)
class SuppressionEntryAdmin(admin.ModelAdmin):
    list_display = ["fingerprint", "contact_policy", "reason", "added_at"]
    list_filter = ["contact_policy"]


@admin.register(RewardWeights)
class RewardWeightsAdmin(admin.ModelAdmin):
    list_display = ["campaign", "revenue", "unsubscribe", "churn", "contact_cost", "updated_at"]


@admin.register(ChannelCap)
class ChannelCapAdmin(admin.ModelAdmin):
    list_display = ["contact_policy", "channel", "max_contacts", "window_days", "consent_required"]
