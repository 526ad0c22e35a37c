"""The decision explorer's filters (GET form: bad values show as field errors, filters ignored)."""

from django import forms

from crm_console.campaigns.forms import channel_choices
from crm_console.campaigns.models import Campaign, Offer
from crm_console.decisioning.models import PolicyVersion


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
