"""Console forms. Validation is the model's (`full_clean`), so messages match the admin and API."""

import json
from decimal import Decimal

from django import forms

from crm_console.campaigns.models import (
    WEEKDAYS, Action, Campaign, Channel, ChannelCap, ContactPolicy, Offer, RewardWeights,
    SendWindow,
)


def channel_choices() -> list[tuple[str, str]]:
    """The workspace's channels, read when a form is built (marketers add their own)."""
    return [(c.key, c.label if c.enabled else f"{c.label} (switched off)")
            for c in Channel.objects.order_by("id")]


def _enabled_channel_choices() -> list[tuple[str, str]]:
    return [(c.key, c.label) for c in Channel.objects.filter(enabled=True).order_by("id")]


def _offer_choices() -> list[tuple[str, str]]:
    """The workspace's offers, read when a form is built (marketers add their own)."""
    return [(o.key, o.label if o.enabled else f"{o.label} (switched off)")
            for o in Offer.objects.order_by("id")]


def _send_window_choices() -> list[tuple[str, str]]:
    return [(w.key, w.label if w.enabled else f"{w.label} (switched off)")
            for w in SendWindow.objects.order_by("start", "id")]


def _enabled_offer_choices() -> list[tuple[str, str]]:
    return [(o.key, o.label) for o in Offer.objects.filter(enabled=True).order_by("id")]


def _enabled_send_window_choices() -> list[tuple[str, str]]:
    return [(w.key, w.label) for w in SendWindow.objects.filter(enabled=True).order_by("start", "id")]


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name", "description", "objective", "status", "horizon_days", "discount_factor",
            "holdout_share", "attribution_window_days", "control_policy", "decision_mode", "exploration_share",
            "retention_guardrail_points", "time_zone", "contact_policy",
        ]


class CampaignCreateForm(CampaignForm):
    """A new campaign starts as a draft: it goes live from its settings page once it has actions
    and a contact policy."""

    class Meta(CampaignForm.Meta):
        fields = [f for f in CampaignForm.Meta.fields if f != "status"]


class ActionForm(forms.ModelForm):
    # the built-in "no contact" action exists once per campaign; people add real channels only
    channel = forms.ChoiceField(choices=channel_choices)
    offer = forms.ChoiceField(choices=_offer_choices)
    send_window = forms.ChoiceField(choices=_send_window_choices, label="Send window")

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


class ChannelCapForm(forms.ModelForm):
    channel = forms.ChoiceField(choices=channel_choices)

    class Meta:
        model = ChannelCap
        fields = ["channel", "max_contacts", "window_days", "min_gap_hours", "consent_required"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["min_gap_hours"].required = False

    def clean_min_gap_hours(self) -> Decimal:
        """A blank gap is no gap of the channel's own (the policy's gap still holds)."""
        gap = self.cleaned_data.get("min_gap_hours")
        return Decimal("0") if gap is None else gap


ChannelCapFormSet = forms.inlineformset_factory(
    ContactPolicy, ChannelCap, form=ChannelCapForm,
    fields=["channel", "max_contacts", "window_days", "min_gap_hours", "consent_required"],
    extra=1, can_delete=True,
)


class CatalogueGenerateForm(forms.Form):
    """Bulk-generate channel x offer x send window (combinations already there are skipped)."""

    channels = forms.MultipleChoiceField(choices=_enabled_channel_choices,
                                         widget=forms.CheckboxSelectMultiple)
    offers = forms.MultipleChoiceField(choices=_enabled_offer_choices,
                                       widget=forms.CheckboxSelectMultiple)
    send_windows = forms.MultipleChoiceField(choices=_enabled_send_window_choices,
                                             widget=forms.CheckboxSelectMultiple, label="Send windows")


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ["key", "label", "cost", "consent_key", "quiet_hours_apply",
                  "counts_toward_overall_cap", "enabled"]


class OfferForm(forms.ModelForm):
    class Meta:
        model = Offer
        fields = ["key", "label", "kind", "value", "redemption_cost", "validity_days",
                  "description", "enabled"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class SendWindowForm(forms.ModelForm):
    days = forms.TypedMultipleChoiceField(
        choices=list(enumerate(WEEKDAYS)), coerce=int, widget=forms.CheckboxSelectMultiple,
        initial=list(range(7)), help_text="The weekdays it opens on, in the customer's time zone.",
    )

    class Meta:
        model = SendWindow
        fields = ["key", "label", "start", "end", "days", "enabled"]
        widgets = {"start": forms.TimeInput(attrs={"type": "time"}),
                   "end": forms.TimeInput(attrs={"type": "time"})}


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


class CampaignFileForm(forms.Form):
    """A campaign file to import (docs/campaign-file.md)."""

    MAX_BYTES = 2 * 1024 * 1024

    file = forms.FileField(label="Campaign file (JSON)",
                           help_text="As written by Download campaign file or campaign_export.")
    update = forms.BooleanField(
        required=False, label="Update what exists",
        help_text="Change the campaign, offers, send windows and contact policy the file names "
                  "where they differ (otherwise they are refused).")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 2 MB.")
        try:
            return json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise forms.ValidationError(f"Not a JSON document: {error}") from None
