"""Campaign files (campaigns as code): one JSON document per campaign, the format's one owner.

`campaign_document` writes a campaign as the document `docs/campaign-file.md` describes: its
settings, the channels, offers and send windows its actions use, the actions, reward weights and
contact policy. `campaign_import` reads one back: the document's shape is checked first (unknown
fields, wrong types, the schema version), then every record is written through the campaigns
services in one transaction, each refusal collected under its JSON path
(`offers[2].value: A percent off lies between 0 and 100`); on any error nothing is written.
Importing a document equal to what is there changes nothing; a campaign, offer, window or contact
policy that exists and differs is refused unless `update` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework import serializers

from crm_console.campaigns import selectors, services
from crm_console.campaigns.models import (
    Action, Campaign, Channel, ContactPolicy, Offer, RewardWeights, SendWindow,
)

SCHEMA_VERSION = 1
CAMPAIGN_SETTINGS = (
    "name", "description", "objective", "horizon_days", "discount_factor", "holdout_share",
    "attribution_window_days", "control_policy", "decision_mode", "exploration_share", "time_zone",
    "retention_guardrail_points",
)
POLICY_SETTINGS = ("name", "overall_max_contacts", "overall_window_days", "min_gap_hours",
                   "quiet_hours_start", "quiet_hours_end")


class CampaignFileError(Exception):
    """The document was refused; `errors` maps JSON paths to messages. Nothing was written."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{path}: {' '.join(messages)}"
                                   for path, messages in errors.items()))
        self.errors = errors


@dataclass
class ImportResult:
    campaign: Campaign
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


# ----------------------------------------------------------------------------- export
def campaign_document(*, campaign: Campaign) -> dict[str, Any]:
    """The campaign as a campaign file (a JSON-able dict)."""
    actions = [a for a in selectors.campaign_catalogue(campaign=campaign) if not a.is_no_contact]
    used_offers = {a.offer for a in actions}
    used_windows = {a.send_window for a in actions}
    used_channels = {a.channel for a in actions}
    weights = RewardWeights.objects.filter(campaign=campaign).first() or RewardWeights()
    policy = campaign.contact_policy
    return {
        "schema_version": SCHEMA_VERSION,
        "campaign": {name: _plain(getattr(campaign, name)) for name in CAMPAIGN_SETTINGS},
        "channels": [_channel_document(c) for c in Channel.objects.filter(key__in=used_channels)
                     .order_by("id")],
        "offers": [_offer_document(o) for o in Offer.objects.filter(key__in=used_offers)
                   .order_by("id")],
        "send_windows": [_window_document(w) for w in SendWindow.objects
                         .filter(key__in=used_windows).order_by("start", "id")],
        "actions": [{"channel": a.channel, "offer": a.offer, "send_window": a.send_window,
                     "variant": a.variant or "default", "cost": float(a.cost),
                     "enabled": a.enabled} for a in actions],
        "reward_weights": {name: float(getattr(weights, name))
                           for name in RewardWeights.WEIGHT_FIELDS},
        "contact_policy": None if policy is None else _policy_export(policy),
    }


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _channel_document(channel: Channel) -> dict[str, Any]:
    return {"key": channel.key, "label": channel.label, "cost": float(channel.cost),
            "consent_key": channel.consent_key, "quiet_hours_apply": channel.quiet_hours_apply,
            "counts_toward_overall_cap": channel.counts_toward_overall_cap,
            "enabled": channel.enabled}


def _offer_document(offer: Offer) -> dict[str, Any]:
    return {"key": offer.key, "label": offer.label, "kind": offer.kind, "value": float(offer.value),
            "redemption_cost": float(offer.redemption_cost),
            "validity_days": offer.validity_days, "description": offer.description,
            "enabled": offer.enabled}


def _window_document(window: SendWindow) -> dict[str, Any]:
    return {"key": window.key, "label": window.label, "start": window.start.strftime("%H:%M"),
            "end": window.end.strftime("%H:%M"), "days": list(window.days),
            "enabled": window.enabled}


# ----------------------------------------------------------------------------- the shape
class _Strict(serializers.Serializer):
    """Refuses fields the schema does not name (a typo must not be silently dropped)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field; the campaign file does not have it."]
                     for name in unknown})
        return super().to_internal_value(data)


def _number(**options: Any) -> serializers.DecimalField:
    """A number read as the decimal it is written as (0.1 stays 0.1: the models check places)."""
    return serializers.DecimalField(max_digits=None, decimal_places=None, coerce_to_string=False,
                                    **options)


class _CampaignSettings(_Strict):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(allow_blank=True, required=False, default="")
    objective = serializers.ChoiceField(choices=Campaign.Objective.choices)
    horizon_days = serializers.IntegerField()
    discount_factor = serializers.FloatField()
    holdout_share = _number()
    attribution_window_days = serializers.IntegerField()
    control_policy = serializers.ChoiceField(choices=Campaign.ControlPolicy.choices)
    decision_mode = serializers.ChoiceField(choices=Campaign.DecisionMode.choices)
    exploration_share = _number()
    time_zone = serializers.CharField()
    retention_guardrail_points = _number(required=False, allow_null=True, default=None)


class _Channel(_Strict):
    key = serializers.CharField()
    label = serializers.CharField()
    cost = _number()
    consent_key = serializers.CharField(allow_blank=True, required=False, default="")
    quiet_hours_apply = serializers.BooleanField(required=False, default=True)
    counts_toward_overall_cap = serializers.BooleanField(required=False, default=True)
    enabled = serializers.BooleanField(required=False, default=True)


class _Offer(_Strict):
    key = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=Offer.Kind.choices)
    value = _number()
    redemption_cost = _number()
    validity_days = serializers.IntegerField()
    description = serializers.CharField(allow_blank=True, required=False, default="")
    enabled = serializers.BooleanField(required=False, default=True)


class _SendWindow(_Strict):
    key = serializers.CharField()
    label = serializers.CharField()
    start = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"])
    end = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"])
    days = serializers.ListField(child=serializers.IntegerField(), required=False,
                                 default=lambda: list(range(7)))
    enabled = serializers.BooleanField(required=False, default=True)


class _Action(_Strict):
    channel = serializers.CharField()
    offer = serializers.CharField()
    send_window = serializers.CharField()
    variant = serializers.CharField(required=False, default="default")
    cost = _number()
    enabled = serializers.BooleanField(required=False, default=True)


class _RewardWeights(_Strict):
    open = serializers.FloatField()
    click = serializers.FloatField()
    conversion = serializers.FloatField()
    revenue = serializers.FloatField()
    unsubscribe = serializers.FloatField()
    churn = serializers.FloatField()
    contact_cost = serializers.FloatField()


class _ChannelCap(_Strict):
    channel = serializers.CharField()
    max_contacts = serializers.IntegerField()
    window_days = serializers.IntegerField()
    min_gap_hours = _number(required=False, default=Decimal("0"))
    consent_required = serializers.BooleanField(required=False, default=True)


class _ContactPolicy(_Strict):
    name = serializers.CharField(max_length=120)
    overall_max_contacts = serializers.IntegerField()
    overall_window_days = serializers.IntegerField()
    min_gap_hours = _number()
    quiet_hours_start = serializers.IntegerField(allow_null=True, required=False, default=None)
    quiet_hours_end = serializers.IntegerField(allow_null=True, required=False, default=None)
    channel_caps = _ChannelCap(many=True, required=False, default=list)


class _CampaignFile(_Strict):
    schema_version = serializers.IntegerField()
    campaign = _CampaignSettings()
    channels = _Channel(many=True, required=False, default=list)
    offers = _Offer(many=True, required=False, default=list)
    send_windows = _SendWindow(many=True, required=False, default=list)
    actions = _Action(many=True)
    reward_weights = _RewardWeights()
    contact_policy = _ContactPolicy(allow_null=True)

    def validate_schema_version(self, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise serializers.ValidationError(
                f"Unknown schema version {value}; this console reads version {SCHEMA_VERSION}.")
        return value


def _paths(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {JSON path: messages}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(key, int):  # a list's item (DRF keys them by position)
                out.update(_paths(value, f"{prefix}[{key}]"))
                continue
            name = "" if key == "non_field_errors" else str(key)
            out.update(_paths(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return out
    if isinstance(detail, list) and detail and all(isinstance(d, dict | list) or not d
                                                   for d in detail):
        out = {}
        for i, value in enumerate(detail):
            if value:
                out.update(_paths(value, f"{prefix}[{i}]"))
        return out
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "$": [str(m) for m in messages]}


# ----------------------------------------------------------------------------- import
def campaign_import(document: Any, *, update: bool = False,
                    imported_by: AbstractBaseUser | None = None) -> ImportResult:
    """Create (or with `update`, bring in line) the campaign a campaign file describes.

    Raises CampaignFileError with every refusal under its JSON path; then nothing was written.
    """
    shape = _CampaignFile(data=document)
    if not shape.is_valid():
        raise CampaignFileError(_paths(shape.errors))
    data = shape.validated_data
    errors: dict[str, list[str]] = {}
    try:
        with transaction.atomic():
            result = _Importer(data, update=update, actor=imported_by, errors=errors).run()
            if errors:
                raise _RollBack
    except _RollBack:
        raise CampaignFileError(errors) from None
    return result


class _RollBack(Exception):
    pass


class _Importer:
    """Writes one validated document, collecting refusals per JSON path."""

    def __init__(self, data: dict[str, Any], *, update: bool, actor: AbstractBaseUser | None,
                 errors: dict[str, list[str]]):
        self.data, self.update, self.actor, self.errors = data, update, actor, errors
        self.created: list[str] = []
        self.updated: list[str] = []

    def run(self) -> ImportResult:
        for i, channel in enumerate(self.data["channels"]):
            self._record(f"channels[{i}]", Channel, channel, _channel_document,
                         services.channel_create,
                         lambda r, f: services.channel_update(channel=r, updated_by=self.actor, **f))
        for i, offer in enumerate(self.data["offers"]):
            self._record(f"offers[{i}]", Offer, offer, _offer_document, services.offer_create,
                         lambda r, f: services.offer_update(offer=r, updated_by=self.actor, **f))
        for i, window in enumerate(self.data["send_windows"]):
            window = {**window, "days": list(window["days"])}
            self._record(f"send_windows[{i}]", SendWindow, window, _window_document,
                         services.send_window_create,
                         lambda r, f: services.send_window_update(send_window=r,
                                                                  updated_by=self.actor, **f))
        policy = self._contact_policy()
        campaign = self._campaign(policy)
        if campaign is not None:
            self._actions(campaign)
            self._reward_weights(campaign)
        return ImportResult(campaign, self.created, self.updated)

    def _refuse(self, path: str, error: ValidationError | str) -> None:
        if isinstance(error, str):
            self.errors.setdefault(path, []).append(error)
            return
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                key = path if name == "__all__" else f"{path}.{name}"
                self.errors.setdefault(key, []).extend(messages)
        else:
            self.errors.setdefault(path, []).extend(error.messages)

    def _attempt(self, path: str, write) -> Any:
        """Run one service write in a savepoint; a refusal is recorded under `path`."""
        try:
            with transaction.atomic():
                return write()
        except ValidationError as error:
            self._refuse(path, error)
            return None

    def _record(self, path: str, model: type, fields: dict[str, Any], document, create,
                change) -> None:
        existing = model.objects.filter(key=fields["key"]).first()
        if existing is None:
            if self._attempt(path, lambda: create(created_by=self.actor, **fields)) is not None:
                self.created.append(path)
            return
        wanted = document(model(**fields))
        if document(existing) == wanted:
            return
        if not self.update:
            differs = sorted(k for k, v in document(existing).items() if wanted.get(k) != v)
            self._refuse(path, f"The workspace's {fields['key']!r} differs ({', '.join(differs)}); "
                               "import with --update to change it.")
            return
        if self._attempt(path, lambda: change(existing, fields)) is not None:
            self.updated.append(path)

    def _contact_policy(self) -> ContactPolicy | None:
        wanted = self.data["contact_policy"]
        if wanted is None:
            return None
        fields = {k: v for k, v in wanted.items() if k != "channel_caps"}
        caps = [dict(c) for c in wanted["channel_caps"]]
        for i, cap in enumerate(caps):
            if not Channel.objects.filter(key=cap["channel"]).exists():
                self._refuse(f"contact_policy.channel_caps[{i}].channel",
                             f"Unknown channel {cap['channel']!r}.")
        existing = ContactPolicy.objects.filter(name=fields["name"]).first()
        if existing is not None:
            if _policy_export(existing) == _policy_document(wanted):
                return existing
            if not self.update:
                self._refuse("contact_policy", f"The workspace's contact policy {fields['name']!r}"
                              " differs; import with --update to change it.")
                return existing
        policy = self._attempt("contact_policy", lambda: services.contact_policy_save(
            contact_policy=existing, updated_by=self.actor, channel_caps=caps, **fields))
        if policy is not None:
            (self.updated if existing else self.created).append("contact_policy")
        return policy

    def _campaign(self, policy: ContactPolicy | None) -> Campaign | None:
        settings = dict(self.data["campaign"])
        existing = Campaign.objects.filter(name=settings["name"]).first()
        if existing is None:
            name = settings.pop("name")
            campaign = self._attempt("campaign", lambda: services.campaign_create(
                name=name, created_by=self.actor, contact_policy=policy, **settings))
            if campaign is not None:
                self.created.append("campaign")
            return campaign
        current = {name: _plain(getattr(existing, name)) for name in CAMPAIGN_SETTINGS}
        wanted = {name: _plain(value) for name, value in settings.items()}
        same = current == wanted and existing.contact_policy_id == (policy.pk if policy else None)
        if not same:
            if not self.update:
                self._refuse("campaign", f"A campaign named {settings['name']!r} exists and "
                             "differs; import with --update to change it.")
                return existing
            if self._attempt("campaign", lambda: services.campaign_update(
                    campaign=existing, updated_by=self.actor, contact_policy=policy,
                    **settings)) is not None:
                self.updated.append("campaign")
        return existing

    def _actions(self, campaign: Campaign) -> None:
        current = {(a.channel, a.offer, a.send_window, a.variant or "default"): a
                   for a in campaign.actions.exclude(channel=Action.NO_CONTACT_CHANNEL)}
        seen = set()
        for i, wanted in enumerate(self.data["actions"]):
            path = f"actions[{i}]"
            identity = (wanted["channel"], wanted["offer"], wanted["send_window"],
                        wanted["variant"])
            if identity in seen:
                self._refuse(path, "The same action is listed twice.")
                continue
            seen.add(identity)
            if not Channel.objects.filter(key=wanted["channel"]).exists():
                self._refuse(f"{path}.channel", f"Unknown channel {wanted['channel']!r}.")
                continue
            action = current.get(identity)
            if action is None:
                if current and not self.update:
                    self._refuse(path, "Not in the campaign's catalogue; import with --update "
                                       "to add it.")
                    continue
                if self._attempt(path, lambda w=wanted: services.action_create(
                        campaign=campaign, created_by=self.actor, **w)) is not None:
                    self.created.append(path)
            elif (action.cost, action.enabled) != (wanted["cost"], wanted["enabled"]):
                if not self.update:
                    self._refuse(path, "Differs from the campaign's action (cost, enabled); "
                                       "import with --update to change it.")
                    continue
                if self._attempt(path, lambda a=action, w=wanted: services.action_update(
                        action=a, updated_by=self.actor, cost=w["cost"],
                        enabled=w["enabled"])) is not None:
                    self.updated.append(path)
        # actions the file leaves out are switched off, never deleted (decisions name them)
        for identity, action in current.items():
            if identity not in seen and action.enabled:
                if not self.update:
                    self._refuse("actions", f"The campaign also has {action.label!r}; import "
                                            "with --update to switch it off.")
                elif self._attempt("actions", lambda a=action: services.action_update(
                        action=a, updated_by=self.actor, enabled=False)) is not None:
                    self.updated.append(f"actions ({action.label}: switched off)")

    def _reward_weights(self, campaign: Campaign) -> None:
        wanted = self.data["reward_weights"]
        weights = RewardWeights.objects.filter(campaign=campaign).first()
        current = {name: float(getattr(weights, name)) for name in RewardWeights.WEIGHT_FIELDS} \
            if weights else None
        if current == wanted:
            return
        if current is not None and "campaign" not in self.created and not self.update:
            self._refuse("reward_weights", "Differ from the campaign's; import with --update "
                                           "to change them.")
            return
        if self._attempt("reward_weights", lambda: services.reward_weights_update(
                campaign=campaign, updated_by=self.actor, **wanted)) is not None:
            self.updated.append("reward_weights")


def _policy_document(policy: dict[str, Any]) -> dict[str, Any]:
    """A contact policy as the file holds it (caps in channel order)."""
    return {**{name: _plain(policy[name]) for name in POLICY_SETTINGS},
            "channel_caps": sorted(({**c, "min_gap_hours": _plain(c.get("min_gap_hours", 0.0))}
                                    for c in policy["channel_caps"]), key=lambda c: c["channel"])}


def _policy_export(policy: ContactPolicy) -> dict[str, Any]:
    return _policy_document({
        **{name: getattr(policy, name) for name in POLICY_SETTINGS},
        "channel_caps": [{"channel": c.channel, "max_contacts": c.max_contacts,
                          "window_days": c.window_days, "min_gap_hours": c.min_gap_hours,
                          "consent_required": c.consent_required}
                         for c in policy.channel_caps.all()],
    })

