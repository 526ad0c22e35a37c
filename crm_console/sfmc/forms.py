"""Console form of the Journey Builder activity. Validation is the model's (`full_clean`)."""

from __future__ import annotations

from typing import Any

from django import forms

from crm_console.sfmc.models import SfmcActivity


class SfmcActivityForm(forms.ModelForm):
    jwt_signing_secret = forms.CharField(
        required=False, max_length=255, widget=forms.PasswordInput(render_value=False),
        label="JWT signing secret",
        help_text="Paste the installed package's JWT signing secret. Leave blank to keep the "
                  "one saved (or, if none is, to use the SFMC_JWT_SIGNING_SECRET environment "
                  "variable).",
    )

    class Meta:
        model = SfmcActivity
        fields = ["name", "jwt_signing_secret", "application_extension_key", "branch_by",
                  "unknown_contact", "retry_window_minutes"]

    def activity_values(self) -> dict[str, Any]:
        """What to save: every field, the secret only when one was typed."""
        values = {name: self.cleaned_data[name] for name in self.Meta.fields}
        if not values["jwt_signing_secret"]:
            del values["jwt_signing_secret"]
        return values
