"""Compliance forms: review verdicts, audit export period, review-queue filters, erasure."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from crm_console.campaigns.forms import channel_choices
from crm_console.campaigns.models import Campaign
from crm_console.compliance.models import DecisionReview
from crm_console.compliance.selectors import REVIEW_RISKS


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=DecisionReview.Verdict.choices)
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you approve or flag it (required when flagging).",
    )

    def clean(self):
        data = super().clean()
        if data.get("verdict") == DecisionReview.Verdict.FLAGGED and not data.get("note", "").strip():
            self.add_error("note", "Say what is wrong when you flag a decision.")
        return data


class ReviewQueueForm(forms.Form):
    MODE_CHOICES = [("filter", "All matching decisions"), ("sample", "A random sample")]
    ORDER_CHOICES = [("risk", "Riskiest first"), ("newest", "Newest first")]
    STATE_CHOICES = [("unreviewed", "Not reviewed"), ("flagged", "Flagged"), ("approved", "Approved"),
                     ("all", "Any")]

    campaign = forms.ModelChoiceField(queryset=Campaign.objects.order_by("name"), required=False,
                                      empty_label="All campaigns")
    channel = forms.ChoiceField(choices=lambda: [("", "All channels"), ("none", "No contact"),
                                                 *channel_choices()], required=False)
    state = forms.ChoiceField(choices=STATE_CHOICES, required=False, initial="unreviewed",
                              label="Review state")
    risk = forms.ChoiceField(
        choices=lambda: [("", "Any"), *((key, words.capitalize()) for key, (words, _)
                                        in REVIEW_RISKS.items())],
        required=False, label="Only decisions where")
    order = forms.ChoiceField(choices=ORDER_CHOICES, required=False, initial="risk",
                              label="Order")
    mode = forms.ChoiceField(choices=MODE_CHOICES, required=False, initial="filter", label="Show")
    sample_size = forms.IntegerField(min_value=1, max_value=500, required=False, initial=20,
                                     label="Sample size")
    seed = forms.IntegerField(min_value=0, required=False, initial=0, label="Sample seed")


class AuditPeriodForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}), label="From")
    end = forms.DateField(widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}), label="To (inclusive)")

    @classmethod
    def default(cls) -> AuditPeriodForm:
        today = timezone.localdate()
        return cls(initial={"start": today - timedelta(days=30), "end": today})

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", "The end date is before the start date.")
        if start and end and (end - start).days > 3660:
            self.add_error("end", "Export at most ten years at a time.")
        return data


class CustomerLookupForm(forms.Form):
    q = forms.CharField(label="Customer: external id, email or #id", max_length=200)


class ErasureForm(forms.Form):
    confirm = forms.CharField(
        label='Type ERASE to confirm', max_length=10,
        help_text="Erasure is irreversible: personal data is overwritten, not hidden.",
    )
    reason = forms.CharField(label="Reason / request reference", max_length=200,
                             help_text="E.g. the ticket of the data subject request. No personal data.")

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != "ERASE":
            raise forms.ValidationError("Type ERASE in capitals to confirm.")
        return value
