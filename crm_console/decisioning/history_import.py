"""Import history: a campaign's past events and the contacts another system made, as logged data.

`history_import` reads two JSON Lines files (docs/import-history.md) a line at a time, in chunks
of `CHUNK_LINES`, so memory stays flat whatever the file's size (apart from the ids seen, kept to
find duplicates within a file):

- events: Segment events exactly as the webhook takes them, validated by the webhook's own parser
  (`api.event_input.event_parse`) and stored by `decisioning.delivery.events_record` - idempotent
  by `messageId`, profiles, consent and decisions updated as for live events.
- contacts: each becomes a logged Decision of the campaign (`policy_name` "imported", context
  `{"imported": true, "contact_id": ..., "propensity_estimated": ...}`), idempotent by
  `contact_id`. Its feature snapshot is the customer's state at that moment: the customer's stored
  events, consent changes and earlier contacts are replayed in time order through
  `agents.features` (vectorised: round k folds every customer's k-th item at once), and the
  observation is taken just before the contact is recorded. Its action mask is every enabled
  action of the campaign's catalogue (and the logged one): what the old system could have sent as
  far as the catalogue goes - its consent, caps and quiet hours at the time are not known.

Validation refuses a row, not its chunk: each refused row is reported with its line, its JSON path
and why, and the other rows go in (a 5,000-line chunk thrown away for one typo helps nobody; the
report names every refused line, and a corrected file can be imported again - it is idempotent).
Writes are all-or-nothing per chunk: a chunk is one transaction, so an error while writing leaves
nothing of that chunk behind.

Contacts without a propensity get one estimated from a model of the old system's choices
(multinomial logistic regression from the feature snapshots to the logged action, fitted on the
campaign's imported contacts once the file is in), clipped to [0.01, 1] and marked
`propensity_estimated`; the off-policy report says how many of its propensities were estimated.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents import features as agent_features
from crm_console.api.event_input import EARLIEST_EVENT, event_parse
from crm_console.campaigns.agents_bridge import catalogue_for_campaign, utc_offset_hours
from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.celery import task_start
from crm_console.customers import event_types
from crm_console.customers.locks import customers_lock
from crm_console.customers.models import Consent, Customer, Event
from crm_console.customers.services import (
    SECONDS_PER_DAY, IncomingEvent, order_discounted, profile_states_advance,
    profile_states_empty,
)
from crm_console.decisioning.attribution import decisions_attribute
from crm_console.decisioning.delivery import events_record
from crm_console.decisioning.models import Decision, HistoryImport
from crm_console.decisioning.services import offer_carries_incentive, profiles_contacts_correct
from crm_console.recordsets import rows_copy, rows_update

logger = logging.getLogger(__name__)

CHUNK_LINES = 5_000
"""Lines read, validated and written per transaction."""
IMPORTED_POLICY = "imported"
"""`Decision.policy_name` of a contact another system made (imported history)."""
SOURCE = "history import"
MAX_REFUSALS_KEPT = 1_000
"""Refused rows listed in the report (all of them are counted)."""
PROPENSITY_FLOOR = 0.01
"""Estimated propensities are clipped to [PROPENSITY_FLOOR, 1]: no row weighs more than 100x."""
ESTIMATE_FIT_ROWS = 50_000
"""The propensity model is fitted on at most this many of the campaign's imported contacts (the
latest), so its memory does not grow with the history."""
MAX_ID_LENGTH = 200

# the order of a customer's items that share a timestamp: a contact's snapshot comes before what
# happened at the same moment (the outcome follows the message)
_CONTACT, _CONSENT, _OPEN, _CLICK, _ORDER = range(5)
_REPLAYED_EVENTS = {event_types.MESSAGE_OPENED: _OPEN, event_types.LINK_CLICKED: _CLICK,
                    event_types.ORDER_COMPLETED: _ORDER}


class HistoryImportError(Exception):
    """The import cannot start (unknown campaign, unreadable file): nothing was written."""


@dataclass(frozen=True)
class RefusedRow:
    file: str  # "events" or "contacts"
    line: int
    where: str  # the JSON path of the field at fault ("$": the whole line)
    message: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.where}: {self.message}"


@dataclass
class ImportReport:
    events_read: int = 0
    events_imported: int = 0
    events_already: int = 0
    contacts_read: int = 0
    contacts_imported: int = 0
    contacts_already: int = 0
    propensities_estimated: int = 0
    refused_count: int = 0
    refused: list[RefusedRow] = field(default_factory=list)

    def refuse(self, row: RefusedRow) -> None:
        self.refused_count += 1
        if len(self.refused) < MAX_REFUSALS_KEPT:
            self.refused.append(row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_read": self.events_read, "events_imported": self.events_imported,
            "events_already": self.events_already, "contacts_read": self.contacts_read,
            "contacts_imported": self.contacts_imported, "contacts_already": self.contacts_already,
            "propensities_estimated": self.propensities_estimated,
            "refused_count": self.refused_count,
            "refused": [{"file": r.file, "line": r.line, "where": r.where, "message": r.message}
                        for r in self.refused],
        }

    def summary(self) -> str:
        return (f"events: {self.events_imported:,} imported, {self.events_already:,} already "
                f"imported; contacts: {self.contacts_imported:,} imported, "
                f"{self.contacts_already:,} already imported "
                f"({self.propensities_estimated:,} propensities estimated); "
                f"{self.refused_count:,} rows refused")


Progress = Callable[[str, int], None]
"""progress(file, lines read so far), called after each chunk."""


# ------------------------------------------------------------------------------------- the import
def history_import(*, campaign: Campaign, events: Iterable[str] | None = None,
                   contacts: Iterable[str] | None = None, chunk_lines: int = CHUNK_LINES,
                   progress: Progress | None = None) -> ImportReport:
    """Import the events, then the contacts (their snapshots replay those events); idempotent."""
    report = ImportReport()
    say = progress or (lambda file, lines: None)
    if events is not None:
        seen: dict[str, int] = {}
        for chunk in _chunks(events, chunk_lines):
            _events_chunk_import(chunk, seen=seen, report=report)
            say("events", report.events_read)
    if contacts is not None:
        seen = {}
        touched: set[int] = set()
        for chunk in _chunks(contacts, chunk_lines):
            touched |= _contacts_chunk_import(chunk, campaign=campaign, seen=seen, report=report)
            say("contacts", report.contacts_read)
        if report.contacts_imported:
            report.propensities_estimated = propensities_estimate(campaign=campaign)
            _touched_attribute(campaign=campaign, customer_ids=sorted(touched))
    logger.info("history import into campaign %s: %s", campaign.pk, report.summary())
    return report


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    """(line number, text) in lists of `size`; blank lines are skipped."""
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        if line.strip():
            chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _json_line(file: str, number: int, line: str, report: ImportReport) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        report.refuse(RefusedRow(file, number, "$", f"Not valid JSON: {error.msg} "
                                                    f"(column {error.colno})."))
        return None


def _first_seen(file: str, number: int, key: str, value: str, seen: dict[str, int],
                report: ImportReport) -> bool:
    """Record `value` as seen on line `number`; False (and the row refused) for a repeat."""
    if value in seen:
        report.refuse(RefusedRow(file, number, key, f"{value!r} is repeated: line {seen[value]} "
                                                    "has the same id."))
        return False
    seen[value] = number
    return True


# ------------------------------------------------------------------------------------- events
def _events_chunk_import(chunk: list[tuple[int, str]], *, seen: dict[str, int],
                         report: ImportReport) -> None:
    now = timezone.now()
    valid: list[IncomingEvent] = []
    for number, line in chunk:
        report.events_read += 1
        item = _json_line("events", number, line, report)
        if item is None:
            continue
        event, errors = event_parse(item)
        if errors:
            for where, messages in errors.items():
                where = "$" if where == "non_field_errors" else where
                report.refuse(RefusedRow("events", number, where, " ".join(messages)))
            continue
        if event.timestamp > now:
            report.refuse(RefusedRow("events", number, "timestamp",
                                     f"{item['timestamp']} is in the future: history is the past."))
            continue
        if _first_seen("events", number, "messageId", event.message_id, seen, report):
            valid.append(event)
    if valid:
        result = events_record(events=valid, source=SOURCE)  # one transaction
        report.events_imported += result.accepted
        report.events_already += result.duplicates


# ------------------------------------------------------------------------------------- contacts
@dataclass(frozen=True)
class _Contact:
    line: int
    contact_id: str
    customer_id: int
    timestamp: datetime
    action: Action
    propensity: float | None


def _contacts_chunk_import(chunk: list[tuple[int, str]], *, campaign: Campaign,
                           seen: dict[str, int], report: ImportReport) -> set[int]:
    """Validate, snapshot and write one chunk of contacts; returns the customers written for."""
    items = []
    for number, line in chunk:
        report.contacts_read += 1
        item = _json_line("contacts", number, line, report)
        if item is not None:
            items.append((number, item))
    with transaction.atomic():
        # one import of a campaign at a time: the idempotency check below stays exact
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        parsed = _contacts_parse(items, campaign=campaign, seen=seen, report=report)
        stored = set(Decision.objects.filter(
            campaign=campaign, policy_name=IMPORTED_POLICY,
            context__contact_id__in=[c.contact_id for c in parsed],
        ).values_list("context__contact_id", flat=True)) if parsed else set()
        fresh = [c for c in parsed if c.contact_id not in stored]
        report.contacts_already += len(parsed) - len(fresh)
        if not fresh:
            return set()
        decisions = _decisions_build(fresh, campaign=campaign)
        decisions_insert(decisions)
        _live_profiles_count(decisions)
        report.contacts_imported += len(decisions)
        return {c.customer_id for c in fresh}


def _contacts_parse(items: list[tuple[int, Any]], *, campaign: Campaign, seen: dict[str, int],
                    report: ImportReport) -> list[_Contact]:
    now = timezone.now()
    names = {str(item.get("customer")) for _, item in items
             if isinstance(item, dict) and isinstance(item.get("customer"), (str, int))}
    customers = dict(Customer.objects.filter(external_id__in=names)
                     .values_list("external_id", "pk")) if names else {}
    erased = set(Customer.objects.filter(external_id__in=names, erased_at__isnull=False)
                 .values_list("external_id", flat=True)) if names else set()
    actions = {(a.channel, a.offer, a.variant or "default", a.send_window): a
               for a in Action.objects.filter(campaign=campaign)}
    keys = {"channel": {k[0] for k in actions}, "offer": {k[1] for k in actions},
            "window": {k[3] for k in actions}}
    parsed = []
    for number, item in items:
        errors: list[tuple[str, str]] = []
        if not isinstance(item, dict):
            report.refuse(RefusedRow("contacts", number, "$", "Each contact must be a JSON object."))
            continue
        contact_id = _contact_identifier(item.get("contact_id"), "contact_id", errors)
        external_id = _contact_identifier(item.get("customer"), "customer", errors)
        if external_id and external_id not in customers:
            errors.append(("customer", f"Unknown customer {external_id!r}: import their events "
                                       "(or let the CRM send them) first."))
        elif external_id in erased:
            errors.append(("customer", f"Customer {external_id!r} was erased."))
        timestamp = _contact_timestamp(item.get("timestamp"), now, errors)
        action = _contact_action(item, actions, keys, errors)
        propensity = _contact_propensity(item.get("propensity"), errors)
        if errors:
            for where, message in errors:
                report.refuse(RefusedRow("contacts", number, where, message))
            continue
        if _first_seen("contacts", number, "contact_id", contact_id, seen, report):
            parsed.append(_Contact(number, contact_id, customers[external_id], timestamp, action,
                                   propensity))
    return parsed


def _contact_identifier(value: Any, key: str, errors: list[tuple[str, str]]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        errors.append((key, "This field is required (a non-empty string)."))
        return ""
    if len(value) > MAX_ID_LENGTH:
        errors.append((key, f"At most {MAX_ID_LENGTH} characters."))
    return value.strip()


def _contact_timestamp(value: Any, now: datetime, errors: list[tuple[str, str]]) -> datetime | None:
    example = "ISO 8601 with its offset, e.g. 2026-11-22T10:15:00+01:00"
    if not isinstance(value, str) or not value:
        errors.append(("timestamp", f"This field is required ({example})."))
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        errors.append(("timestamp", f"{value!r} is not {example}."))
        return None
    if parsed > now:
        errors.append(("timestamp", f"{value} is in the future: history is the past."))
        return None
    if parsed < EARLIEST_EVENT:
        errors.append(("timestamp", f"{value} is before {EARLIEST_EVENT:%Y-%m-%d}."))
        return None
    return parsed


def _contact_action(item: dict[str, Any], actions: dict[tuple[str, str, str, str], Action],
                    keys: dict[str, set[str]], errors: list[tuple[str, str]]) -> Action | None:
    values = {}
    for key in ("channel", "offer", "window"):
        value = item.get(key)
        if not isinstance(value, str):
            errors.append((key, "This field is required (a key of the campaign's catalogue)."))
        elif value not in keys[key]:
            errors.append((key, f"{value!r} is not in the campaign's catalogue; one of "
                                f"{sorted(keys[key])}."))
        values[key] = value
    variant = item.get("variant", "default")
    if variant is None:
        variant = "default"
    if not isinstance(variant, str):
        errors.append(("variant", "A string (the message variant), \"default\" when left out."))
    if errors:
        return None
    action = actions.get((values["channel"], values["offer"], variant or "default", values["window"]))
    if action is None:
        errors.append(("$", f"The campaign's catalogue has no action {values['channel']} x "
                            f"{values['offer']} x {values['window']} (variant {variant!r})."))
    return action


def _contact_propensity(value: Any, errors: list[tuple[str, str]]) -> float | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not 0 < value <= 1):
        errors.append(("propensity", f"{value!r} is not a probability in (0, 1]: the chance the "
                                     "old system gave this action (leave it out if unknown)."))
        return None
    return float(value)


def _decisions_build(contacts: list[_Contact], *, campaign: Campaign) -> list[Decision]:
    bridge = catalogue_for_campaign(campaign=campaign)
    snapshots = contact_snapshots(contacts)
    decisions = []
    for contact, snapshot in zip(contacts, snapshots, strict=True):
        index = bridge.index_of_action(contact.action.pk)
        mask = bridge.enabled.copy()
        mask[0] = True  # leaving the customer alone is always allowed
        mask[index] = True
        estimated = contact.propensity is None
        sent = not contact.action.is_no_contact
        decisions.append(Decision(
            campaign=campaign, customer_id=contact.customer_id, policy_version=None,
            policy_name=IMPORTED_POLICY, action=contact.action, action_index=index,
            # until the model of the old system is fitted (propensities_estimate): uniform
            propensity=contact.propensity if not estimated else 1.0 / int(mask.sum()),
            action_probabilities=[], features=np.round(snapshot.astype(float), 5).tolist(),
            action_mask=mask.tolist(), mask_reasons={}, holdout=False, greedy=False,
            context={"imported": True, "contact_id": contact.contact_id,
                     "propensity_estimated": estimated, "line": contact.line},
            status=Decision.Status.DELIVERED if sent else Decision.Status.DECIDED,
            decided_at=contact.timestamp, send_at=contact.timestamp if sent else None,
        ))
    return decisions


def decisions_insert(decisions: list[Decision]) -> None:
    """INSERT the decisions (primary keys are not needed back): COPY on PostgreSQL."""
    rows_copy(decisions, model=Decision)


def _live_profiles_count(decisions: list[Decision]) -> None:
    """The imported contacts count in their customers' stored profiles, as delivered contacts of
    that time (what a late delivery receipt does), under the customers' row locks."""
    sent = [d for d in decisions if not d.action.is_no_contact]
    if sent:
        customers_lock(sorted({d.customer_id for d in sent}))
        profiles_contacts_correct(sent, withdraw=False)


# ------------------------------------------------------------------------------------- snapshots
def contact_snapshots(contacts: list[_Contact]) -> np.ndarray:
    """(n, F) the observation each contact's customer had just before it: the customer's stored
    events (opens, clicks, orders), consent changes and other contacts up to then replayed in
    time order from an empty profile. Round k folds every customer's k-th item at once."""
    customer_ids = sorted({c.customer_id for c in contacts})
    row_of = {pk: i for i, pk in enumerate(customer_ids)}
    until = max(c.timestamp for c in contacts)
    words = vocabulary()
    channel_index = words.channel_index
    zones = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "time_zone"))

    # (timestamp, kind, payload) per customer; payload: contact -> (new contact's position or -1,
    # channel, discounted); consent -> (positions, granted); open/click -> channel; order ->
    # (revenue, discounted)
    items: dict[int, list[tuple[float, int, Any]]] = defaultdict(list)
    for position, contact in enumerate(contacts):
        if not contact.action.is_no_contact:
            items[row_of[contact.customer_id]].append((
                contact.timestamp.timestamp(), _CONTACT,
                (position, channel_index[contact.action.channel],
                 offer_carries_incentive(contact.action.offer))))
        else:
            items[row_of[contact.customer_id]].append(
                (contact.timestamp.timestamp(), _CONTACT, (position, -1, False)))
    for customer_id, at, channel, offer in (
            Decision.objects.filter(customer_id__in=customer_ids, decided_at__lte=until)
            .exclude(status=Decision.Status.RELEASED).exclude(action__channel=Action.NO_CONTACT_CHANNEL)
            .values_list("customer_id", "decided_at", "action__channel", "action__offer")):
        if channel in channel_index:
            items[row_of[customer_id]].append(
                (at.timestamp(), _CONTACT, (-1, channel_index[channel], offer_carries_incentive(offer))))
    for customer_id, at, key, granted in (
            Consent.objects.filter(customer_id__in=customer_ids, recorded_at__lte=until)
            .values_list("customer_id", "recorded_at", "channel", "granted")):
        items[row_of[customer_id]].append(
            (at.timestamp(), _CONSENT, (words.channels_needing(key), granted)))
    for customer_id, at, name, props in (
            Event.objects.filter(customer_id__in=customer_ids, timestamp__lte=until,
                                 type=Event.Type.TRACK, name__in=list(_REPLAYED_EVENTS))
            .values_list("customer_id", "timestamp", "name", "properties")):
        props = props if isinstance(props, dict) else {}
        kind = _REPLAYED_EVENTS[name]
        if kind == _ORDER:
            payload: Any = (float(props.get("revenue") or 0.0), order_discounted(props))
        else:
            payload = channel_index.get(props.get("channel"), 0)
        items[row_of[customer_id]].append((at.timestamp(), kind, payload))

    n = len(customer_ids)
    ordered = [sorted(items[i], key=lambda item: (item[0], item[1])) for i in range(n)]
    state = profile_states_empty(n)
    clocks = np.array([rows[0][0] if rows else 0.0 for rows in ordered])
    state.day_clock[:] = (clocks % SECONDS_PER_DAY) / SECONDS_PER_DAY  # a UTC day, as ingestion
    snapshots = np.zeros((len(contacts), words.feature_layout.n_features), dtype=np.float32)
    for k in range(max((len(rows) for rows in ordered), default=0)):
        round_rows = [(i, rows[k]) for i, rows in enumerate(ordered) if len(rows) > k]
        targets = clocks.copy()
        for i, (at, _, _) in round_rows:
            targets[i] = at
        clocks = profile_states_advance(state, clocks, targets)
        _round_fold(state, round_rows, snapshots=snapshots, zones=[zones[pk] for pk in customer_ids])
    return snapshots


def _round_fold(state: agent_features.ProfileState, round_rows: list[tuple[int, tuple]], *,
                snapshots: np.ndarray, zones: list[str]) -> None:
    """Fold one round (at most one item per customer): snapshot the new contacts, then record
    every contact, consent change, open, click and order in one call per kind."""
    by_kind: dict[int, list[tuple[int, float, Any]]] = defaultdict(list)
    for i, (at, kind, payload) in round_rows:
        by_kind[kind].append((i, at, payload))
    contacts = by_kind.get(_CONTACT, [])
    new = [(i, at, payload[0]) for i, at, payload in contacts if payload[0] >= 0]
    if new:
        rows = np.array([i for i, _, _ in new], dtype=np.int64)
        view = state.take(rows)
        view.utc_offset_hours[:] = [
            utc_offset_hours(zones[i], datetime.fromtimestamp(at, tz=dt_timezone.utc))
            for i, at, _ in new]
        snapshots[[position for _, _, position in new]] = agent_features.observation(view)
    sent = [(i, payload[1], payload[2]) for i, _, payload in contacts if payload[1] >= 0]
    if sent:
        rows, channels, discounted = (np.array(column) for column in zip(*sent))
        agent_features.record_contact(state, rows.astype(np.int64), channels.astype(np.int64),
                                      discounted.astype(bool))
    for i, _, (positions, granted) in by_kind.get(_CONSENT, []):
        for position in positions:
            agent_features.set_consent(state, np.array([i]), position, granted)
    for kind, record in ((_OPEN, agent_features.record_open), (_CLICK, agent_features.record_click)):
        if by_kind.get(kind):
            rows, channels = (np.array(column, dtype=np.int64)
                              for column in zip(*((i, ch) for i, _, ch in by_kind[kind])))
            record(state, rows, channels)
    if by_kind.get(_ORDER):
        orders = by_kind[_ORDER]
        agent_features.record_purchase(
            state, np.array([i for i, _, _ in orders], dtype=np.int64),
            np.array([p[0] for _, _, p in orders]), np.array([p[1] for _, _, p in orders], dtype=bool))


# ------------------------------------------------------------------------------------- propensities
def imported_decisions(*, campaign: Campaign):
    return Decision.objects.filter(campaign=campaign, policy_name=IMPORTED_POLICY)


def propensities_estimate(*, campaign: Campaign) -> int:
    """Fit a model of the old system's choices (multinomial logistic regression, feature snapshot
    -> logged action, on the campaign's latest imported contacts) and give every imported contact
    without a known propensity the model's probability of its logged action, renormalised over
    its mask and clipped to [0.01, 1]; returns how many were estimated."""
    estimated_rows = imported_decisions(campaign=campaign).filter(context__propensity_estimated=True)
    if not estimated_rows.exists():
        return 0
    # erasure clears a snapshot: nothing left to learn from or to estimate for
    sample = [row for row in imported_decisions(campaign=campaign).order_by("-decided_at", "-id")
              .values_list("features", "action_index")[:ESTIMATE_FIT_ROWS] if row[0]]
    if not sample:
        return 0
    words = vocabulary()
    x = words.features_in_layout([f for f, _ in sample])
    y = np.array([a for _, a in sample], dtype=np.int64)
    model = _choice_model(x, y)
    total, last = 0, 0
    while True:  # a chunk at a time, by id: memory does not grow with the history
        with transaction.atomic():
            rows = list(estimated_rows.filter(id__gt=last).order_by("id")
                        .only("id", "features", "action_index", "action_mask")[:CHUNK_LINES])
            if not rows:
                break
            last = rows[-1].pk
            rows = [d for d in rows if d.features]
            if not rows:
                continue
            probs = model(words.features_in_layout([d.features for d in rows]),
                          np.array([d.action_mask for d in rows], dtype=bool))
            for decision, p in zip(rows, probs, strict=True):
                decision.propensity = float(np.clip(p[decision.action_index], PROPENSITY_FLOOR, 1.0))
                decision.action_probabilities = np.round(p, 6).tolist()
            rows_update(rows, ["propensity", "action_probabilities"])
        total += len(rows)
    return total


def _choice_model(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(obs, masks) -> (n, A) probabilities of each action, 0 where masked, rows summing to 1."""
    classes = np.unique(y)

    def spread(raw: np.ndarray, masks: np.ndarray) -> np.ndarray:
        probs = np.zeros(masks.shape, dtype=np.float64)
        probs[:, classes] = raw
        probs = np.where(masks, probs, 0.0) + np.where(masks, 1e-9, 0.0)
        return probs / probs.sum(axis=1, keepdims=True)

    if classes.size == 1:  # the old system always chose the same action
        return lambda obs, masks: spread(np.ones((len(obs), 1)), masks)
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(max_iter=300).fit(x, y)
    return lambda obs, masks: spread(fitted.predict_proba(obs), masks)


# ------------------------------------------------------------------------------------- attribution
def _touched_attribute(*, campaign: Campaign, customer_ids: list[int]) -> None:
    """Attribute the imported outcome events to the imported contacts, and price them."""
    for start in range(0, len(customer_ids), CHUNK_LINES):
        decisions_attribute(campaign=campaign, customer_ids=customer_ids[start:start + CHUNK_LINES])


def campaign_for_import(*, campaign_id: int) -> Campaign:
    try:
        campaign = Campaign.objects.get(pk=campaign_id)
    except Campaign.DoesNotExist:
        raise HistoryImportError(f"No campaign {campaign_id}.") from None
    try:
        catalogue_for_campaign(campaign=campaign)
    except ValueError as error:
        raise HistoryImportError(str(error)) from None
    return campaign


# ------------------------------------------------------------------------------------- uploads
def _upload_save(upload: Any, folder: Path, name: str) -> str:
    path = folder / name
    with path.open("wb") as out:
        for piece in upload.chunks():
            out.write(piece)
    return str(path)


@transaction.atomic
def history_import_start(*, campaign: Campaign, events_file: Any, contacts_file: Any | None,
                         uploaded_by: Any | None = None) -> HistoryImport:
    """Keep the uploaded files on disk (streamed there, never read whole) and queue the import."""
    record = HistoryImport.objects.create(campaign=campaign, uploaded_by=uploaded_by,
                                          events_path="")
    folder = Path(settings.MEDIA_ROOT) / "history-imports" / str(record.pk)
    folder.mkdir(parents=True, exist_ok=True)
    record.events_path = _upload_save(events_file, folder, "events.jsonl")
    if contacts_file is not None:
        record.contacts_path = _upload_save(contacts_file, folder, "contacts.jsonl")
    record.save(update_fields=["events_path", "contacts_path"])
    record_id = record.pk
    transaction.on_commit(lambda: task_start("crm_console.decisioning.tasks.import_history", record_id))
    return record


def history_import_run(*, history_import_id: int) -> HistoryImport:
    """Run a queued upload: progress after each chunk, the report (or the error) at the end."""
    record = HistoryImport.objects.select_related("campaign").get(pk=history_import_id)
    if record.is_finished:
        return record
    imports = HistoryImport.objects.filter(pk=record.pk)
    imports.update(status=HistoryImport.Status.RUNNING)

    def progress(file: str, lines: int) -> None:
        imports.update(phase=file, lines_processed=lines)

    try:
        with ExitStack() as files:
            events = files.enter_context(open(record.events_path, encoding="utf-8",
                                              errors="replace"))
            contacts = (files.enter_context(open(record.contacts_path, encoding="utf-8",
                                                 errors="replace"))
                        if record.contacts_path else None)
            report = history_import(campaign=record.campaign, events=events, contacts=contacts,
                                    progress=progress)
    except Exception as error:  # the page says what went wrong; chunks written so far stay
        logger.exception("history import %s failed", record.pk)
        imports.update(status=HistoryImport.Status.FAILED, error=f"{type(error).__name__}: {error}",
                       finished_at=timezone.now())
    else:
        imports.update(status=HistoryImport.Status.SUCCEEDED, report=report.to_dict(),
                       finished_at=timezone.now())
        # the files hold personal data: kept no longer than the import needs them (a failed
        # import keeps them, so a retried task can run again)
        for path in (record.events_path, record.contacts_path):
            if path:
                Path(path).unlink(missing_ok=True)
    record.refresh_from_db()
    return record
