"""The decision explorer's filters (GET form: bad values show as field errors, filters ignored),
the history upload, and the start of a batch run."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms

from crm_console.campaigns.forms import channel_choices
from crm_console.campaigns.models import Campaign, Offer, validate_time_zone
from crm_console.decisioning.models import PolicyVersion
from crm_console.training.selectors import customer_segment


class DecisionFilterForm(forms.Form):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.order_by("name"), required=False,
                                      empty_label="All campaigns")
    channel = forms.ChoiceField(choices=lambda: [("", "All channels"), ("none", "No contact"),
                                                 *channel_choices()], required=False)
    offer = forms.ChoiceField(choices=lambda: [("", "All offers"), *(
        (o.key, o.label) for o in Offer.objects.order_by("id"))], required=False)
    date_from = forms.DateField(required=False, label="From",
                                widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To",
                              widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    holdout = forms.ChoiceField(choices=[("", "Policy and holdout"), ("no", "Policy only"),
                                         ("yes", "Holdout only")], required=False, label="Group")
    policy_version = forms.ModelChoiceField(
        queryset=PolicyVersion.objects.select_related("campaign").order_by("campaign__name", "-version"),
        required=False, empty_label="All policy versions", label="Policy version",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy_version"].label_from_instance = (
            lambda v: f"v{v.version} {v.get_algorithm_display()} ({v.campaign.name})")

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def selector_filters(self) -> dict:
        if not self.is_valid():
            return {}
        data = dict(self.cleaned_data)
        data["campaign"] = data["campaign"].pk if data.get("campaign") else None
        data["policy_version"] = data["policy_version"].pk if data.get("policy_version") else None
        return data


class HistoryImportForm(forms.Form):
    """Upload history files for a campaign (docs/import-history.md)."""

    campaign = forms.ModelChoiceField(queryset=Campaign.objects.order_by("name"))
    events = forms.FileField(label="Events (events.jsonl)",
                             help_text="One Segment event a line, as the webhook takes them.")
    contacts = forms.FileField(label="Contacts (contacts.jsonl)", required=False,
                               help_text="Past contacts made by another system, one a line.")


CHUNK_SIZE_MIN = 10
"""Fewer customers a chunk and the queue carries more tasks than decisions are worth."""
CHUNK_SIZE_MAX = 10_000
"""More and one chunk's transaction holds its customers' rows (and a worker) too long."""
TRAIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
"""A trait's name: letters, digits, "_" and "-", never "__" (it would become a database lookup)."""


def traits_parse(text: str) -> dict[str, Any]:
    """`name = value` lines into the segment's traits; a value reads as JSON where it can (true,
    42) and as text otherwise. Raises ValidationError naming the line that is wrong."""
    traits: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        name, equals, value = (part.strip() for part in line.partition("="))
        if not equals or not name or not value:
            raise forms.ValidationError(
                "Line %(number)s: write one trait a line as name = value (e.g. plan = retail).",
                code="trait_line", params={"number": number})
        if not TRAIT_NAME.match(name) or "__" in name:
            raise forms.ValidationError(
                "Line %(number)s: %(name)s is not a trait name (letters, digits, _ and -).",
                code="trait_name", params={"number": number, "name": name})
        if name in traits:
            raise forms.ValidationError("Line %(number)s: %(name)s is given twice.",
                                        code="trait_twice", params={"number": number, "name": name})
        try:
            traits[name] = json.loads(value)
        except ValueError:
            traits[name] = value
    return traits


class BatchRunStartForm(forms.Form):
    """Start a batch run of a live campaign: who (the segment, in customer_segment's format, as
    `run_campaign` uses it), in chunks of how many customers, once per day or not."""

    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.filter(status=Campaign.Status.LIVE).order_by("name"),
        empty_label=None, error_messages={
            "required": "Choose the campaign to run.",
            "invalid_choice": "Choose a live campaign: only live campaigns make decisions."})
    traits = forms.CharField(
        label="Only customers with these traits", required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "plan = retail"}),
        help_text="One trait a line, as name = value. Leave empty for every customer.")
    time_zone = forms.CharField(
        label="Only customers in this time zone", required=False, max_length=64,
        validators=[validate_time_zone], help_text="e.g. Europe/London. Leave empty for all.")
    leave_out_churned = forms.BooleanField(
        label="Leave out churned customers", required=False, initial=True)
    chunk_size = forms.IntegerField(
        label="Customers per chunk", initial=1000, min_value=CHUNK_SIZE_MIN,
        max_value=CHUNK_SIZE_MAX,
        help_text=f"Each chunk is one task for the workers ({CHUNK_SIZE_MIN:,} to "
                  f"{CHUNK_SIZE_MAX:,}).",
        error_messages={"required": "Say how many customers each chunk decides.",
                        "min_value": f"A chunk needs at least {CHUNK_SIZE_MIN:,} customers.",
                        "max_value": f"A chunk takes at most {CHUNK_SIZE_MAX:,} customers.",
                        "invalid": "Give a whole number of customers."})
    once_per_day = forms.BooleanField(
        label="Once per day", required=False, initial=True,
        help_text="If this campaign already had a batch run today, join that run instead.")
    explain = forms.BooleanField(
        label="Explain each decision now", required=False,
        help_text="Stores every decision's explanation as it is made (slower).")

    def clean_traits(self) -> dict[str, Any]:
        return traits_parse(self.cleaned_data.get("traits") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and not customer_segment(filters=self.segment()).exists():
            raise forms.ValidationError("No customer matches this segment: nothing to decide.",
                                        code="segment_empty")
        return data

    def segment(self) -> dict[str, Any]:
        """The segment in customer_segment's format (what the run stores and decides)."""
        data = self.cleaned_data
        segment: dict[str, Any] = {"exclude_churned": bool(data.get("leave_out_churned"))}
        if data.get("traits"):
            segment["traits"] = data["traits"]
        if data.get("time_zone"):
            segment["time_zone"] = data["time_zone"]
        return segment
