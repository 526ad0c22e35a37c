"""Console forms. Validation is the model's (`full_clean`), so messages match the admin and API."""

from django import forms

from crm_console.campaigns.models import (
    Action, Campaign, Channel, ChannelCap, ContactPolicy, Offer, RewardWeights, SendWindow,
)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name", "description", "objective", "status", "horizon_days", "discount_factor",
            "holdout_share", "attribution_window_days", "control_policy", "decision_mode", "exploration_share",
            "time_zone", "contact_policy",
        ]


class CampaignCreateForm(CampaignForm):
    """A new campaign starts as a draft: it goes live from its settings page once it has actions
    and a contact policy."""

    class Meta(CampaignForm.Meta):
        fields = [f for f in CampaignForm.Meta.fields if f != "status"]


class ActionForm(forms.ModelForm):
    # the built-in "no contact" action exists once per campaign; people add real channels only
    channel = forms.ChoiceField(choices=Channel.choices)

    class Meta:
        model = Action
        fields = ["channel", "offer", "variant", "send_window", "cost", "enabled"]


class RewardWeightsForm(forms.ModelForm):
    class Meta:
        model = RewardWeights
        fields = list(RewardWeights.WEIGHT_FIELDS)
        labels = {
            "open": "Per message opened", "click": "Per link clicked",
            "conversion": "Per order (on top of its revenue)",
            "revenue": "Per unit of net revenue", "unsubscribe": "Per unsubscribe",
            "churn": "Per churned customer", "contact_cost": "Times each contact's cost",
        }
        widgets = {name: forms.NumberInput(attrs={"step": "any"}) for name in RewardWeights.WEIGHT_FIELDS}


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


class CatalogueGenerateForm(forms.Form):
    """Bulk-generate channel x offer x send window (combinations already there are skipped)."""

    channels = forms.MultipleChoiceField(choices=Channel.choices, widget=forms.CheckboxSelectMultiple)
    offers = forms.MultipleChoiceField(choices=Offer.choices, widget=forms.CheckboxSelectMultiple)
    send_windows = forms.MultipleChoiceField(choices=SendWindow.choices,
                                             widget=forms.CheckboxSelectMultiple, label="Send windows")


class SuppressionCheckForm(forms.Form):
    check = forms.CharField(label="Is this CRM id on the list?", max_length=200)


class SuppressionUploadForm(forms.Form):
    MAX_BYTES = 5 * 1024 * 1024

    file = forms.FileField(
        label="Suppression list (CSV)",
        help_text="One customer per row: external_id, optionally a reason column. A header row "
                  "naming external_id is allowed. Nothing is saved if any row is wrong.",
    )
    reason = forms.CharField(required=False, max_length=200,
                             help_text="Used for rows without a reason of their own.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 5 MB; split it.")
        return upload
