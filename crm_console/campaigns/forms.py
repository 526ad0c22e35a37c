"""Console forms. Validation is the model's (`full_clean`), so messages match the admin and API."""

from django import forms

from crm_console.campaigns.models import Action, Campaign, ChannelCap, ContactPolicy, RewardWeights


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name", "description", "objective", "status", "horizon_days", "discount_factor",
            "holdout_share", "attribution_window_days", "control_policy", "decision_mode",
            "time_zone", "contact_policy",
        ]


class ActionForm(forms.ModelForm):
    class Meta:
        model = Action
        fields = ["channel", "offer", "variant", "send_window", "cost", "enabled"]


class RewardWeightsForm(forms.ModelForm):
    class Meta:
        model = RewardWeights
        fields = list(RewardWeights.WEIGHT_FIELDS)


class ContactPolicyForm(forms.ModelForm):
    class Meta:
        model = ContactPolicy
        fields = [
            "name", "overall_max_contacts", "overall_window_days", "min_gap_hours",
            "quiet_hours_start", "quiet_hours_end",
        ]


ChannelCapFormSet = forms.inlineformset_factory(
    ContactPolicy, ChannelCap, fields=["channel", "max_contacts", "window_days", "consent_required"],
    extra=1, can_delete=True,
)
