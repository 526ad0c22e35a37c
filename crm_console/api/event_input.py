"""Validation of a Segment-shaped event batch: every item, every field, before anything is written.

Hand-written rather than a DRF ListSerializer: a 1,000-event batch validates in a few
milliseconds instead of a few hundred, and the errors come out keyed by item index
({"3": {"timestamp": [...]}}), which is what an integrator needs to find the bad one. The
serializers below describe the same shape for the OpenAPI schema.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from crm_console.campaigns.models import validate_time_zone
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers import event_types
from crm_console.customers.services import IncomingEvent

MAX_BATCH_EVENTS = 1000
MAX_ID_LENGTH = 200


def _channel_keys() -> set[str]:
    return set(vocabulary().channel_keys)


def _consent_keys() -> set[str]:
    """What a consent change may name: a consent key or a channel (for its consent)."""
    words = vocabulary()
    return set(words.consent_keys) | set(words.channel_keys)


def event_batch_parse(data: Any) -> tuple[list[IncomingEvent], dict[str, Any]]:
    """(events, {}) when every item is valid, else ([], {"batch": {index: {field: [messages]}}})."""
    if not isinstance(data, dict) or not isinstance(data.get("batch"), list):
        return [], {"batch": ['Send {"batch": [ ...events... ]}: a list of Segment events.']}
    if not data["batch"]:
        return [], {"batch": ["The batch is empty."]}
    events, errors = [], {}
    for index, item in enumerate(data["batch"]):
        event, item_errors = event_parse(item)
        if item_errors:
            errors[str(index)] = item_errors
        else:
            events.append(event)
    return (events, {}) if not errors else ([], {"batch": errors})


MAX_JSON_DEPTH = 32
"""Objects and lists nested deeper than this are refused (a CRM's event is a few levels deep)."""


def unstorable_json(value: Any, path: str) -> tuple[str, str] | None:
    """(JSON path, why) of the first part of `value` the database cannot store as given: a NUL
    character or a lone surrogate in a string or key, or nesting deeper than MAX_JSON_DEPTH.
    Walked without recursion, so any depth is answered."""
    stack = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return where, f"Nested more than {MAX_JSON_DEPTH} levels deep."
        if isinstance(node, dict):
            for key, child in node.items():
                problem = _text_problem(key)
                if problem:
                    return where, f"A key {problem}."
                stack.append((child, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(node, list):
            stack.extend((child, f"{where}.{i}", depth + 1) for i, child in enumerate(node))
        elif isinstance(node, str):
            problem = _text_problem(node)
            if problem:
                return where, f"The text {problem}."
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (not valid Unicode)"
    return None


def event_parse(item: Any) -> tuple[IncomingEvent | None, dict[str, list[str]]]:
    """One Segment event (a decoded JSON value): (event, {}) or (None, {field: [messages]}).
    The webhook's batches and the history import (decisioning.history_import) both use it."""
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Each event must be a JSON object."]}
    unstorable = unstorable_json(item, "")
    if unstorable is not None:
        where, why = unstorable
        return None, {where or "non_field_errors": [why]}
    errors: dict[str, list[str]] = {}

    def error(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    kind = item.get("type")
    if kind not in ("identify", "track"):
        error("type", 'Must be "identify" or "track".')
    user_id = _identifier(item.get("userId"), "userId", error)
    message_id = _identifier(item.get("messageId"), "messageId", error)
    timestamp = _timestamp(item.get("timestamp"), error)
    name = ""
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    if kind == "track":
        name = item.get("event")
        if not isinstance(name, str) or not name.strip():
            error("event", "A track call needs the event name.")
            name = ""
        elif len(name) > 200:
            error("event", "At most 200 characters.")
        properties = item.get("properties", {})
        if not isinstance(properties, dict):
            error("properties", "Must be an object.")
            properties = {}
        else:
            _properties_check(event_types.canonical_name(name.strip()), properties, error)
    elif kind == "identify":
        traits = item.get("traits", {})
        if not isinstance(traits, dict):
            error("traits", "Must be an object.")
            traits = {}
        else:
            _traits_check(traits, error)
    if errors:
        return None, errors
    return IncomingEvent(type=kind, user_id=user_id, message_id=message_id, timestamp=timestamp,
                         name=name.strip(), properties=properties, traits=traits), {}


def _identifier(value: Any, field: str, error) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        error(field, "This field is required (a non-empty string).")
        return ""
    if len(value) > MAX_ID_LENGTH:
        error(field, f"At most {MAX_ID_LENGTH} characters.")
    return value.strip()


EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
MAX_CLOCK_SKEW = timedelta(days=1)
MAX_REVENUE = 1e9
"""An order's net revenue above this is a unit or typing error, and would overflow the profile's
lifetime sums long before it meant anything."""
MAX_EMAIL_LENGTH = 254


def _timestamp(value: Any, error) -> datetime | None:
    if not isinstance(value, str) or not value:
        error("timestamp", "This field is required (ISO 8601, e.g. 2026-11-22T10:15:00Z).")
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        error("timestamp", f"{value!r} is not an ISO 8601 date-time (e.g. 2026-11-22T10:15:00Z).")
        return None
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt_timezone.utc)
    try:
        in_utc = parsed.astimezone(dt_timezone.utc)
    except OverflowError:  # year 1 at +01:00, year 9999 at -01:00
        in_utc = None
    latest = timezone.now() + MAX_CLOCK_SKEW
    if in_utc is None or not EARLIEST_EVENT <= in_utc <= latest:
        error("timestamp", f"{value!r} is outside the times events can have: from "
                           f"{EARLIEST_EVENT:%Y-%m-%d} to a day from now (clock skew).")
        return None
    return parsed


def _properties_check(name: str, props: dict[str, Any], error) -> None:
    channel = props.get("channel")
    known = _consent_keys() if name == event_types.CONSENT_CHANGED else _channel_keys()
    if channel is not None and (not isinstance(channel, str) or channel not in known):
        error("properties.channel", f"Unknown channel {channel!r}; one of {sorted(known)}.")
    decision_id = props.get("decision_id")
    if decision_id is not None and not _is_id(decision_id):
        error("properties.decision_id", "Must be the integer decision id the API returned.")
    if name == event_types.ORDER_COMPLETED and "revenue" in props:
        revenue = props["revenue"]
        if (isinstance(revenue, bool) or not isinstance(revenue, (int, float))
                or not math.isfinite(revenue) or not 0 <= revenue <= MAX_REVENUE):
            error("properties.revenue",
                  f"Must be a number from 0 to {MAX_REVENUE:,.0f} (net revenue of the order).")
    if name == event_types.CONSENT_CHANGED:
        if isinstance(props.get("consent"), dict):
            _consent_map_check(props["consent"], "properties.consent", error)
        elif channel is None or not isinstance(props.get("granted"), bool):
            error("properties", 'Consent Changed needs {"channel": ..., "granted": true|false} or '
                                '{"consent": {"<channel>": true|false}}.')
    if name == event_types.DELIVERY_FAILED and decision_id is None:
        error("properties.decision_id", "Delivery Failed needs the decision_id whose contact failed.")
    if name == event_types.MESSAGE_DELIVERED and decision_id is None:
        error("properties.decision_id",
              "Message Delivered needs the decision_id whose contact was delivered.")


def _traits_check(traits: dict[str, Any], error) -> None:
    if traits.get("email"):
        email = traits["email"]
        try:
            if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH:
                raise DjangoValidationError("not a string of an email's length")
            validate_email(email)
        except DjangoValidationError:
            error("traits.email", f"Enter a valid email address (at most {MAX_EMAIL_LENGTH} "
                                  "characters).")
    if traits.get("phone") is not None and (not isinstance(traits["phone"], str) or len(traits["phone"]) > 40):
        error("traits.phone", "A string of at most 40 characters.")
    if traits.get("name") is not None and (not isinstance(traits["name"], str) or len(traits["name"]) > 200):
        error("traits.name", "A string of at most 200 characters.")
    if traits.get("timezone") is not None:
        try:
            validate_time_zone(str(traits["timezone"]))
        except DjangoValidationError as exc:
            error("traits.timezone", exc.messages[0])
    if traits.get("consent") is not None:
        if not isinstance(traits["consent"], dict):
            error("traits.consent", 'An object {"<channel>": true|false}.')
        else:
            _consent_map_check(traits["consent"], "traits.consent", error)


def _consent_map_check(consent: dict[str, Any], field: str, error) -> None:
    known = _consent_keys()
    for channel, granted in consent.items():
        if channel not in known:
            error(field, f"Unknown channel or consent {channel!r}; one of {sorted(known)}.")
        elif not isinstance(granted, bool):
            error(field, f"{channel}: true or false.")


def _is_id(value: Any) -> bool:
    """A positive database id, as an int or its ASCII digits ("²".isdigit() is true too)."""
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


# ------------------------------------------------------------------------------------- schema
class SegmentEventSerializer(serializers.Serializer):
    """One Segment spec event (identify or track)."""

    type = serializers.ChoiceField(choices=["identify", "track"])
    userId = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="The CRM's customer id.")
    messageId = serializers.CharField(max_length=MAX_ID_LENGTH,
                                      help_text="Idempotency key: a replay is stored once.")
    timestamp = serializers.DateTimeField(help_text="ISO 8601; no offset means UTC.")
    event = serializers.CharField(required=False, help_text=(
        "track only: e.g. Email Opened, Link Clicked, Order Completed, Unsubscribed, Consent "
        "Changed, Message Delivered, Delivery Failed; any other name is stored as a generic "
        "event."))
    properties = serializers.DictField(required=False, help_text=(
        "track only: channel, decision_id (from a decision), revenue (Order Completed), "
        "granted / consent (Consent Changed)."))
    traits = serializers.DictField(required=False, help_text=(
        "identify only: email, phone, name, timezone (IANA), consent {channel: bool}, others kept."))


class EventBatchSerializer(serializers.Serializer):
    batch = SegmentEventSerializer(many=True, help_text=f"At most {MAX_BATCH_EVENTS} events.")


class EventBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="New events stored.")
    duplicates = serializers.IntegerField(help_text="Events whose messageId was already stored.")
