"""Forms of the training pages: start a run, promote a policy version, run a trial."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from crm_console.training.models import TrainingRun


class TrainingRunForm(forms.ModelForm):
    class Meta:
        model = TrainingRun
        fields = ["campaign", "algorithm", "budget_steps", "warm_start", "seed", "population_size"]
        labels = {"budget_steps": "Budget (simulated customer-days, per policy)",
                  "population_size": "Policies trained side by side"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["population_size"].required = False

    def clean_population_size(self) -> int:
        """Left blank: one policy, as before populations existed."""
        size = self.cleaned_data.get("population_size")
        return 1 if size is None else size


class PromoteForm(forms.Form):
    force = forms.BooleanField(required=False, label="Force past the guardrail (admins only)")
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason", help_text="Required when forcing: why this policy goes live without the evidence.",
    )

    def __init__(self, *args, can_force: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_force = can_force
        if not can_force:  # the reason is the forcing's: nothing to write for who cannot force
            del self.fields["force"]
            del self.fields["reason"]

    def clean(self):
        data = super().clean()
        if data.get("force") and not (data.get("reason") or "").strip():
            self.add_error("reason", "A forced promotion needs a written reason.")
        return data


class TrialForm(forms.Form):
    share_percent = forms.DecimalField(
        min_value=Decimal("1"), max_value=Decimal("50"), decimal_places=1, initial=Decimal("10"),
        label="Share of customers (%)",
        help_text="The candidate decides for this share of the campaign's customers (the holdout "
                  "excepted); the live policy for the rest.")

    days = forms.IntegerField(
        min_value=1, max_value=180, initial=28, label="Days it measures",
        help_text="Its verdict is read once these days have passed, on these days only.")

    @property
    def share(self) -> Decimal:
        """The share as a fraction, for `trials.trial_start`."""
        return self.cleaned_data["share_percent"] / 100


class TrialStopForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000, label="Why stop it (optional)")


class ResponseModelOverrideForm(forms.Form):
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Reason",
        help_text="Why policies may train in this model although it misses the observed KPIs "
                  "(kept in the audit trail).",
    )


class WhatIfForm(forms.Form):
    """What would happen if ...: only the fields filled in change; the rest stays as today."""

    name = forms.CharField(max_length=120, label="Scenario name",
                           help_text='e.g. "Email cap 3 a week" - saved with its answer.')
    cap_channel = forms.ChoiceField(required=False, label="Cap a channel")
    cap_max_contacts = forms.IntegerField(required=False, min_value=0, label="At most (contacts)")
    cap_window_days = forms.IntegerField(required=False, min_value=1, label="Per (days)")
    actions_off = forms.MultipleChoiceField(required=False, label="Switch these actions off",
                                            widget=forms.SelectMultiple(attrs={"size": 5}))
    actions_on = forms.MultipleChoiceField(required=False, label="Switch these actions on",
                                           widget=forms.SelectMultiple(attrs={"size": 5}))
    retrain = forms.BooleanField(required=False, label="Train a new policy under the changes",
                                 help_text="Slower; otherwise today's policy is replayed under them.")

    def __init__(self, *args, campaign, reward_fields: tuple[str, ...], channels, **kwargs):
        super().__init__(*args, **kwargs)
        self.reward_fields = reward_fields
        self.fields["cap_channel"].choices = [("", "No change")] + list(channels)
        contact = [a for a in campaign.actions.order_by("id") if not a.is_no_contact]
        self.fields["actions_off"].choices = [(str(a.pk), str(a)) for a in contact if a.enabled]
        self.fields["actions_on"].choices = [(str(a.pk), str(a)) for a in contact if not a.enabled]
        for name in reward_fields:
            self.fields[f"reward_{name}"] = forms.FloatField(
                required=False, label=f"Reward weight: {name.replace('_', ' ')}")

    def clean(self):
        data = super().clean()
        channel = data.get("cap_channel")
        if channel and (data.get("cap_max_contacts") is None or data.get("cap_window_days") is None):
            self.add_error("cap_max_contacts", "Give both the number of contacts and the days.")
        return data

    @property
    def changes(self) -> dict:
        data = self.cleaned_data
        changes: dict = {"reward_weights": {
            name: data[f"reward_{name}"] for name in self.reward_fields
            if data.get(f"reward_{name}") is not None}}
        if data.get("cap_channel"):
            changes["channel_caps"] = {
                data["cap_channel"]: [data["cap_max_contacts"], data["cap_window_days"]]}
        changes["actions_enabled"] = {**{a: False for a in data.get("actions_off", [])},
                                      **{a: True for a in data.get("actions_on", [])}}
        return changes
