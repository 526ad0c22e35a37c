"""Forms of the training pages: start a run, promote a policy version."""

from __future__ import annotations

from django import forms

from crm_console.training.models import TrainingRun


class TrainingRunForm(forms.ModelForm):
    class Meta:
        model = TrainingRun
        fields = ["campaign", "algorithm", "budget_steps", "warm_start", "seed"]
        labels = {"budget_steps": "Budget (simulated customer-days)"}


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


class ResponseModelOverrideForm(forms.Form):
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Reason",
        help_text="Why policies may train in this model although it misses the observed KPIs "
                  "(kept in the audit trail).",
    )
