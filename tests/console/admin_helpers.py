"""Django admin URLs of a model instance, for the tests that check what the admin may do."""

from __future__ import annotations

from django.db import models


def admin_url(obj: models.Model | type[models.Model], view: str) -> str:
    """/admin/<app>/<model>/<view>: "add/" and "" for a model, "<pk>/change/" and
    "<pk>/delete/" for an instance."""
    meta = obj._meta
    base = f"/admin/{meta.app_label}/{meta.model_name}/"
    if view in ("add", "changelist"):
        return base + ("add/" if view == "add" else "")
    return f"{base}{obj.pk}/{view}/"
