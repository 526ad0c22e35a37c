"""Reads for the Journey Builder split: the activity, its branches, its config.json, its calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse

from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.selectors import campaign_catalogue
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.sfmc.models import SfmcActivity, SfmcCall, SfmcJourney

NO_CONTACT_BRANCH = "no_contact"
"""The branch of "leave the contact alone": the decision chose no contact, or (by default) the
console could not decide for this contact (unknown or erased contact key)."""
NO_OFFER_BRANCH = "no_offer"
"""Per offer: a contact whose action carries no offer."""
EXECUTE_TIMEOUT_MS = 1000
"""What config.json tells Journey Builder to wait for an answer: the issue's 1 s."""
LIFECYCLE_ENDPOINTS = ("save", "publish", "validate", "stop")


@dataclass(frozen=True)
class Branch:
    """One outcome of the split: the key Journey Builder routes on and what marketers read."""

    key: str
    label: str


def activity_for_campaign_id(*, campaign_id: int) -> SfmcActivity | None:
    return SfmcActivity.objects.select_related("campaign").filter(campaign_id=campaign_id).first()


def branch_for_action(*, activity: SfmcActivity, action: Action) -> str:
    """The branch a decided action sends the contact down (see `activity_branches`)."""
    if action.is_no_contact:
        return NO_CONTACT_BRANCH
    if activity.branch_by == SfmcActivity.BranchBy.ACTION:
        return f"action-{action.pk}"
    if activity.branch_by == SfmcActivity.BranchBy.OFFER:
        return action.offer or NO_OFFER_BRANCH
    return action.channel


def activity_branches(*, activity: SfmcActivity) -> list[Branch]:
    """Every branch the split can answer, in the order config.json lists them, no_contact last.

    They come from the campaign's enabled contact actions: one per channel (default), per action
    or per offer, as the marketer chose. Journey Builder copies the outcomes when the activity is
    dropped on the canvas, so a catalogue change needs the activity re-added to show new branches.
    """
    actions = [a for a in campaign_catalogue(campaign=activity.campaign, enabled_only=True)
               if not a.is_no_contact]
    words = vocabulary()
    branches: dict[str, Branch] = {}
    for action in actions:
        key = branch_for_action(activity=activity, action=action)
        if key in branches:
            continue
        if activity.branch_by == SfmcActivity.BranchBy.ACTION:
            label = action.label
        elif activity.branch_by == SfmcActivity.BranchBy.OFFER:
            label = words.offer_label(action.offer) if action.offer else "No offer"
        else:
            label = words.channel_label(action.channel)
        branches[key] = Branch(key, label)
    ordered = list(branches.values())
    if activity.branch_by == SfmcActivity.BranchBy.CHANNEL:
        # in the workspace's channel order, as every per-channel list of the console
        order = words.channel_index
        ordered.sort(key=lambda b: order.get(b.key, len(order)))
    return [*ordered, Branch(NO_CONTACT_BRANCH, "No contact")]


def activity_urls(*, campaign_id: int, base_url: str) -> dict[str, str]:
    """The absolute URLs of the activity's endpoints (base_url: scheme and host, no slash)."""
    urls = {name: base_url + reverse(f"sfmc:{name}", args=[campaign_id])
            for name in ("config", "execute", *LIFECYCLE_ENDPOINTS)}
    # the installed package's "Endpoint URL": Journey Builder reads <it>/config.json
    urls["endpoint"] = urls["config"].removesuffix("config.json")
    return urls


def activity_config(*, activity: SfmcActivity, base_url: str) -> dict[str, Any]:
    """config.json of the custom split ("Define a Custom Split Activity with Multiple Outcomes").

    Journey Builder posts a JWT (useJwt) to each URL; `{{Contact.Key}}` arrives as contactKey.
    """
    urls = activity_urls(campaign_id=activity.campaign_id, base_url=base_url)
    lifecycle = {name: {"url": urls[name], "verb": "POST", "useJwt": True}
                 for name in LIFECYCLE_ENDPOINTS}
    branches = activity_branches(activity=activity)
    config: dict[str, Any] = {
        "workflowApiVersion": "1.1",
        "metaData": {"category": "flow", "isConfigured": True,
                     "configOnDrop": False},
        "type": "RestDecision",
        "name": activity.name,
        "lang": {"en-US": {
            "name": activity.name,
            "description": f"The console's next best action for campaign "
                           f"'{activity.campaign.name}' picks the branch.",
        }},
        "arguments": {
            "execute": {
                "inArguments": [{"contactKey": "{{Contact.Key}}"}],
                "outArguments": [],
                "url": urls["execute"],
                "verb": "POST",
                "format": "json",
                "useJwt": True,
                "timeout": EXECUTE_TIMEOUT_MS,
                "retryCount": 1,
                "retryDelay": 1000,
            },
        },
        "configurationArguments": lifecycle,
        "userInterfaces": {"configModal": {"height": 200, "width": 400, "fullscreen": False}},
        "outcomes": [
            {"key": b.key, "arguments": {"branchResult": b.key}, "metaData": {"label": b.label}}
            for b in branches
        ],
        "schema": {"arguments": {"execute": {
            "inArguments": [{"contactKey": {"dataType": "Text", "isNullable": False,
                                            "direction": "in"}}],
            "outArguments": [],
        }}},
    }
    if activity.application_extension_key:
        config["configurationArguments"]["applicationExtensionKey"] = (
            activity.application_extension_key)
    return config


def activity_readiness(*, campaign: Campaign) -> list[str]:
    """Why the campaign cannot decide for a journey (validate refuses it), or nothing."""
    problems = []
    if campaign.status != Campaign.Status.LIVE:
        problems.append(f"Campaign '{campaign.name}' is {campaign.get_status_display().lower()}: "
                        "only a live campaign decides. Make it live first.")
    if campaign.contact_policy_id is None:
        problems.append(f"Campaign '{campaign.name}' has no contact policy.")
    if not campaign.actions.filter(enabled=True).exclude(
            channel=Action.NO_CONTACT_CHANNEL).exists():
        problems.append(f"Campaign '{campaign.name}' has no enabled contact action: every "
                        "contact would take no_contact.")
    return problems


def activity_live_policy_note(*, campaign: Campaign) -> str:
    """Who decides: the live policy version, or the control policy while none is promoted."""
    live = campaign.policy_versions.filter(status="live").only("version", "algorithm").first()
    if live is not None:
        return f"policy v{live.version} ({live.algorithm})"
    return f"the control policy ({campaign.get_control_policy_display()}): no policy is live yet"


def activity_calls_recent(*, activity: SfmcActivity, limit: int = 20) -> QuerySet[SfmcCall]:
    return activity.calls.select_related("decision")[:limit]


def activity_journeys(*, activity: SfmcActivity) -> QuerySet[SfmcJourney]:
    return activity.journeys.all()
