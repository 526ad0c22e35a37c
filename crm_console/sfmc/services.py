"""Writes for the Journey Builder split: configure the activity, answer execute, record lifecycle.

Execute decides exactly as `POST /api/v1/decisions` does: it calls the same
`decisioning.batching.decision_create` (caps, consent, holdout, propensity, explanation, audit),
then maps the decided action to a branch. A retried call (same activity instance and contact,
within the activity's retry window) is answered from its first call, never decided twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from crm_console.accounts.roles import ADMIN, has_role
from crm_console.api.event_input import unstorable_json
from crm_console.campaigns.models import Campaign
from crm_console.compliance.services import audit_record
from crm_console.customers.models import Customer
from crm_console.decisioning import batching, services as decision_services
from crm_console.sfmc.models import SfmcActivity, SfmcCall, SfmcJourney
from crm_console.sfmc.selectors import (
    NO_CONTACT_BRANCH, activity_readiness, branch_for_action,
)

logger = logging.getLogger(__name__)

MAX_IN_ARGUMENTS_BYTES = 8 * 1024
"""Largest inArguments accepted (as compact JSON): they are logged with every decision."""
IDS_MAX_LENGTH = 100


@dataclass
class SplitAnswer:
    """What an endpoint answers: the status and the JSON body, and the call it logged if any."""

    status_code: int
    body: dict[str, Any]
    call: SfmcCall | None = field(default=None, repr=False)


class SplitInputError(Exception):
    """A call that cannot be answered; nothing is written (status 400 or 413)."""

    def __init__(self, message: str, *, status_code: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.message, self.status_code, self.code = message, status_code, code


def error_body(code: str, message: str) -> dict[str, Any]:
    """The console API's one error shape (crm_console.api.errors)."""
    return {"error": {"code": code, "message": message}}


# =============================================================================================
# Configuration (admins only)
# =============================================================================================
ACTIVITY_FIELDS = ("name", "jwt_signing_secret", "application_extension_key", "branch_by",
                   "unknown_contact", "retry_window_minutes")


@transaction.atomic
def sfmc_activity_save(*, campaign: Campaign, saved_by: AbstractBaseUser,
                       **values: Any) -> SfmcActivity:
    """Create or change the campaign's Journey Builder activity. Only admins configure it: the
    JWT signing secret lets whoever holds it make decisions for the campaign."""
    if not has_role(saved_by, ADMIN):
        raise PermissionDenied("Only admins configure the Journey Builder activity.")
    unknown = set(values) - set(ACTIVITY_FIELDS)
    if unknown:
        raise TypeError(f"unknown activity fields: {', '.join(sorted(unknown))}")
    activity = SfmcActivity.objects.filter(campaign=campaign).first()
    created = activity is None
    if created:
        activity = SfmcActivity(campaign=campaign)
    secret_changed = "jwt_signing_secret" in values and (
        values["jwt_signing_secret"] != activity.jwt_signing_secret)
    for name, value in values.items():
        setattr(activity, name, value)
    activity.updated_by = saved_by
    activity.full_clean()
    activity.save()
    verb = "sfmc_activity.created" if created else "sfmc_activity.changed"
    audit_record(actor=saved_by, verb=verb, target=activity,
                 details={"campaign": campaign.pk, "branch_by": activity.branch_by,
                          "secret_changed": secret_changed})
    return activity


# =============================================================================================
# execute: one contact at a split
# =============================================================================================
@dataclass(frozen=True)
class ExecuteInput:
    """What an execute call's claims carry, checked."""

    contact_key: str
    in_arguments: dict[str, Any]
    journey_id: str
    activity_object_id: str
    activity_instance_id: str
    definition_instance_id: str

    @property
    def retry_key(self) -> str:
        """Same activity instance and same contact: a retry of one call."""
        instance = (self.activity_instance_id
                    or f"{self.definition_instance_id}/{self.activity_object_id}")
        return hashlib.sha256(f"{instance}\x00{self.contact_key}".encode()).hexdigest()


def execute_input(*, claims: dict[str, Any]) -> ExecuteInput:
    """The execute call's contact key, other inArguments and ids; SplitInputError if unusable."""
    raw = claims.get("inArguments", [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SplitInputError("inArguments must be a list of objects, as config.json declares.")
    merged: dict[str, Any] = {}
    for item in raw:  # Journey Builder sends one object per declared argument group
        merged.update(item)
    size = len(json.dumps(merged, separators=(",", ":"), default=str).encode())
    if size > MAX_IN_ARGUMENTS_BYTES:
        raise SplitInputError(f"inArguments are {size} bytes; the limit is "
                              f"{MAX_IN_ARGUMENTS_BYTES}.", status_code=413, code="too_large")
    contact_key = merged.pop("contactKey", None) or claims.get("keyValue")
    if contact_key is None or contact_key == "":
        raise SplitInputError("No contactKey: map {{Contact.Key}} to contactKey in inArguments.")
    if not isinstance(contact_key, str) or not contact_key.strip():
        raise SplitInputError("contactKey must be a non-empty string (the customer's id).")
    if len(contact_key) > 200:
        raise SplitInputError("contactKey is longer than 200 characters.")
    unstorable = unstorable_json(merged, "inArguments")
    if unstorable is not None:
        raise SplitInputError(f"{unstorable[0]}: {unstorable[1]}")
    ids = {}
    for name in ("journeyId", "activityObjectID", "activityInstanceId", "definitionInstanceId"):
        value = claims.get(name) or ""
        if not isinstance(value, str) or len(value) > IDS_MAX_LENGTH:
            raise SplitInputError(f"{name} must be a string of at most {IDS_MAX_LENGTH} "
                                  "characters.")
        ids[name] = value
    return ExecuteInput(contact_key=contact_key, in_arguments=merged,
                        journey_id=ids["journeyId"], activity_object_id=ids["activityObjectID"],
                        activity_instance_id=ids["activityInstanceId"],
                        definition_instance_id=ids["definitionInstanceId"])


def split_execute(*, activity: SfmcActivity, claims: dict[str, Any],
                  now: datetime | None = None) -> SplitAnswer:
    """The branch for one contact: `{"branchResult": key}` (or an error answer), logged.

    The call row is claimed (by its retry key) in the transaction that makes the decision, so a
    retry racing the first call waits for it and gets its answer.
    """
    now = now or timezone.now()
    given = execute_input(claims=claims)
    retry_key = given.retry_key
    first = _first_answer(activity=activity, retry_key=retry_key, now=now)
    if first is not None:
        return first
    try:
        with transaction.atomic():
            call = SfmcCall.objects.create(
                activity=activity, endpoint=SfmcCall.Endpoint.EXECUTE, received_at=now,
                journey_id=given.journey_id, activity_object_id=given.activity_object_id,
                activity_instance_id=given.activity_instance_id, retry_key=retry_key)
            answer = _decide(activity=activity, given=given, call=call, now=now)
            if answer.status_code != 200:
                call.retry_key = None  # an error is not an answer: a retry is decided afresh
            call.status_code = answer.status_code
            call.save(update_fields=["status_code", "branch", "decision", "message",
                                     "retry_key"])
            return answer
    except IntegrityError:  # a concurrent first call of the same retry key committed first
        first = _first_answer(activity=activity, retry_key=retry_key, now=now)
        if first is None:
            raise
        return first


def _first_answer(*, activity: SfmcActivity, retry_key: str, now: datetime) -> SplitAnswer | None:
    call = SfmcCall.objects.filter(activity=activity, retry_key=retry_key).first()
    if call is None:
        return None
    if call.received_at < now - timedelta(minutes=activity.retry_window_minutes):
        # the window has passed: a new visit of the split, decided afresh
        SfmcCall.objects.filter(pk=call.pk).update(retry_key=None)
        return None
    SfmcCall.objects.filter(pk=call.pk).update(retries=F("retries") + 1)
    return SplitAnswer(200, {"branchResult": call.branch}, call)


def _decide(*, activity: SfmcActivity, given: ExecuteInput, call: SfmcCall,
            now: datetime) -> SplitAnswer:
    customer = (Customer.objects.filter(external_id=given.contact_key)
                .only("id", "erased_at").first())
    if customer is None or customer.is_erased:
        why = ("Unknown contact key (send an identify event for it first)." if customer is None
               else "The contact was erased: no decisions.")
        return _undecided(activity=activity, call=call, why=why)
    context = {
        "source": "sfmc",
        "sfmc": {"journey_id": given.journey_id, "activity_object_id": given.activity_object_id,
                 "activity_instance_id": given.activity_instance_id,
                 "definition_instance_id": given.definition_instance_id},
        "in_arguments": given.in_arguments,
    }
    try:
        campaign = decision_services.campaign_for_decisions(campaign_id=activity.campaign_id)
        outcome = batching.decision_create(
            campaign=campaign, customer_external_id=given.contact_key, context=context, now=now)
    except decision_services.DecisionError as exc:
        fields = exc.fields
        if "customer" in fields or "customers" in fields:  # erased or gone meanwhile
            # not the decisioning message: it names the contact key, which this log must not keep
            return _undecided(activity=activity, call=call,
                              why="The contact was erased or removed meanwhile: no decision.")
        call.message = _first_message(fields)[:300]
        return SplitAnswer(409, error_body("cannot_decide", call.message), call)
    decision = outcome.decision
    call.decision = decision
    call.branch = branch_for_action(activity=activity, action=decision.action)
    if decision.policy_version_id is None:
        call.message = (f"Decided by the control policy ({decision.policy_name})"
                        f"{': holdout' if decision.holdout else ': no live policy'}.")
    return SplitAnswer(200, {"branchResult": call.branch}, call)


def _undecided(*, activity: SfmcActivity, call: SfmcCall, why: str) -> SplitAnswer:
    """An unknown or erased contact: the no_contact branch (a journey has no error branch), or an
    error where the marketer chose so."""
    call.message = why
    if activity.unknown_contact == SfmcActivity.UnknownContact.ERROR:
        return SplitAnswer(400, error_body("unknown_contact", why), call)
    call.branch = NO_CONTACT_BRANCH
    logger.info("sfmc activity %s: no_contact without a decision: %s", activity.pk, why)
    return SplitAnswer(200, {"branchResult": NO_CONTACT_BRANCH}, call)


def _first_message(fields: dict[str, Any]) -> str:
    value: Any = next(iter(fields.values()), "Cannot decide.")
    while isinstance(value, (dict, list)):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return str(value)


# =============================================================================================
# save / validate / publish / stop
# =============================================================================================
def split_lifecycle(*, activity: SfmcActivity, endpoint: str, claims: dict[str, Any],
                    now: datetime | None = None) -> SplitAnswer:
    """Acknowledge a configuration call and record the journey and activity ids it carries;
    validate refuses (400) a campaign that cannot decide."""
    if endpoint not in {"save", "validate", "publish", "stop"}:
        raise ValueError(f"not a lifecycle endpoint: {endpoint}")
    now = now or timezone.now()
    ids = {}
    for name in ("interactionId", "activityObjectID", "interactionKey", "interactionVersion",
                 "originalDefinitionId"):
        value = claims.get(name, "")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or len(value) > IDS_MAX_LENGTH:
            raise SplitInputError(f"{name} must be a string of at most {IDS_MAX_LENGTH} "
                                  "characters.")
        ids[name] = value
    journey_id = ids["interactionId"] or ids["originalDefinitionId"]
    problems = activity_readiness(campaign=activity.campaign) if endpoint == "validate" else []
    with transaction.atomic():
        if journey_id:
            SfmcJourney.objects.update_or_create(
                activity=activity, journey_id=journey_id,
                activity_object_id=ids["activityObjectID"],
                defaults={"journey_key": ids["interactionKey"][:200],
                          "journey_version": ids["interactionVersion"][:20],
                          "last_event": endpoint, "last_event_at": now})
        call = SfmcCall.objects.create(
            activity=activity, endpoint=endpoint, received_at=now,
            status_code=400 if problems else 200, journey_id=journey_id,
            activity_object_id=ids["activityObjectID"], message=" ".join(problems)[:300])
    if problems:
        return SplitAnswer(400, error_body("cannot_decide", " ".join(problems)), call)
    return SplitAnswer(200, {"success": True}, call)
