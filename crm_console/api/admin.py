"""Admin for API integrations: create one (token and signing secret shown once), revoke."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from crm_console.api import services
from crm_console.api.models import ApiIntegration, Scope


class ApiIntegrationForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiIntegration
        fields = ["name", "scopes"]


@admin.register(ApiIntegration)
class ApiIntegrationAdmin(admin.ModelAdmin):
    form = ApiIntegrationForm
    list_display = ["name", "token_prefix", "scope_list", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    readonly_fields = ["token_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiIntegration) -> str:
        return ", ".join(obj.scopes)

    def get_readonly_fields(self, request, obj=None):
        # the name and scopes of an existing integration are fixed: create a new one instead
        return [*self.readonly_fields, "name", "scopes"] if obj else self.readonly_fields

    def get_fields(self, request, obj=None):
        return ["name", "scopes"] if obj is None else [
            "name", "scopes", "token_prefix", "created_by", "created_at", "last_used_at",
            "revoked_at",
        ]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        created = services.api_integration_create(
            name=form.cleaned_data["name"], scopes=list(form.cleaned_data["scopes"]),
            created_by=request.user,
        )
        obj.pk = created.integration.pk
        obj.refresh_from_db()
        messages.warning(request, format_html(
            "Copy these now, they are not shown again. Token: <code>{}</code> Signing secret: "
            "<code>{}</code>", created.token, created.signing_secret,
        ))

    @admin.action(description="Revoke the selected integrations' tokens")
    def revoke(self, request, queryset) -> None:
        for integration in queryset:
            services.api_integration_revoke(integration=integration, revoked_by=request.user)
        self.message_user(request, f"Revoked {queryset.count()} integration(s).", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: decisions and events keep their provenance
