"""Config edits that change how a campaign decides mark every process's serving set-ups stale.

A cache-invalidation hook, not business logic: whatever saves these rows (services, the admin, a
promotion), the next decision in every process reloads the campaign's catalogue, contact rules and
policy versions (see decisioning.serving).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from crm_console.campaigns.models import (
    Action, Campaign, ChannelCap, ContactPolicy, Offer, SendWindow,
)
from crm_console.decisioning.models import PolicyTrial, PolicyVersion
from crm_console.decisioning.serving import serving_changed

SERVING_MODELS = (Campaign, ContactPolicy, ChannelCap, Action, Offer, SendWindow, PolicyVersion,
                  PolicyTrial)


def serving_config_changed(sender, **kwargs) -> None:
    # now (this process, even inside the edit's transaction) and again once it is visible
    serving_changed()
    transaction.on_commit(serving_changed)


for model in SERVING_MODELS:
    post_save.connect(serving_config_changed, sender=model,
                      dispatch_uid=f"serving:{model.__name__}")
    post_delete.connect(serving_config_changed, sender=model,
                        dispatch_uid=f"serving:{model.__name__}:delete")
