"""API views: one per operation, nested Input/Output serializers, logic in services/selectors."""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter, extend_schema, extend_schema_serializer, inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm_console.api import services as api_services
from crm_console.api.authentication import (
    IntegrationTokenAuthentication, SignedIntegrationAuthentication,
)
from crm_console.api.errors import ApiError, PayloadTooLarge
from crm_console.api.event_input import (
    EventBatchResultSerializer, EventBatchSerializer, event_batch_parse, unstorable_json,
)
from crm_console.api.models import Scope
from crm_console.api.permissions import HasIntegrationScope, ModelPermissionForWrites
from crm_console.api.throttling import IntegrationRateThrottle
from crm_console.campaigns import selectors as campaign_selectors
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.campaigns import services as campaign_services
from crm_console.campaigns.models import Campaign
from crm_console.decisioning import batching, services as decision_services
from crm_console.decisioning import delivery as decision_delivery
from crm_console.decisioning.models import Decision


class CampaignListApi(APIView):
    """List campaigns; marketers may create a draft campaign."""

    permission_classes = [ModelPermissionForWrites]
    write_permission = "campaigns.add_campaign"

    class InputSerializer(serializers.Serializer):
        # Field types only; every rule (ranges, time zone, going live) is the model's.
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True)
        objective = serializers.ChoiceField(choices=Campaign.Objective.choices, required=False)
        horizon_days = serializers.IntegerField(required=False)
        discount_factor = serializers.FloatField(required=False)
        holdout_share = serializers.DecimalField(max_digits=4, decimal_places=3, required=False)
        attribution_window_days = serializers.IntegerField(required=False)
        control_policy = serializers.ChoiceField(choices=Campaign.ControlPolicy.choices, required=False)
        decision_mode = serializers.ChoiceField(choices=Campaign.DecisionMode.choices, required=False)
        exploration_share = serializers.DecimalField(max_digits=4, decimal_places=3, required=False)
        retention_guardrail_points = serializers.DecimalField(
            max_digits=4, decimal_places=1, required=False, allow_null=True)
        time_zone = serializers.CharField(required=False)

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Campaign
            fields = [
                "id", "name", "description", "objective", "status", "horizon_days",
                "discount_factor", "holdout_share", "attribution_window_days", "control_policy",
                "decision_mode", "exploration_share", "retention_guardrail_points", "time_zone",
                "contact_policy", "created_at",
            ]

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        campaigns = campaign_selectors.campaign_list()
        return Response(self.OutputSerializer(campaigns, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_services.campaign_create(created_by=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer(campaign).data, status=status.HTTP_201_CREATED)


# =============================================================================================
# Integrations: events in (signed webhook), decisions out
# =============================================================================================
MAX_BODY_BYTES = 2 * 1024 * 1024
"""Largest request body accepted (413 above): 1,000 events of ~2 KB each."""
MAX_BATCH = 1000

SIGNATURE_PARAMETER = OpenApiParameter(
    name="X-Signature", location=OpenApiParameter.HEADER, required=True, type=str,
    description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' with the integration's "
                "signing secret>; refused when more than 300 s from our clock either way.",
)
ERROR_RESPONSE = inline_serializer("Error", {
    "error": inline_serializer("ErrorBody", {
        "code": serializers.CharField(), "message": serializers.CharField(),
        "fields": serializers.DictField(required=False),
    }),
})


class IntegrationApi(APIView):
    """Base of the integration endpoints: token auth, scope check, per-integration throttle."""

    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [HasIntegrationScope]
    throttle_classes = [IntegrationRateThrottle]
    throttle_scope = "integration"
    required_scope = ""

    def initial(self, request: Request, *args, **kwargs) -> None:
        # a chunked body without Content-Length would be read as empty (Django reads
        # Content-Length bytes): say so, rather than answer that the signature does not match
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            raise ApiError("Send the body with a Content-Length header (chunked transfer encoding "
                           "is not read).", status_code=status.HTTP_411_LENGTH_REQUIRED,
                           code="length_required")
        # refuse an oversize body before reading it (and before hashing it for the signature)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"Request body is {length} bytes; the limit is {MAX_BODY_BYTES}.")
        super().initial(request, *args, **kwargs)


class EventBatchApi(IntegrationApi):
    """Segment events in: identify / track, up to 1,000 per call, signed, idempotent by messageId."""

    authentication_classes = [SignedIntegrationAuthentication]
    required_scope = Scope.EVENTS_WRITE

    @extend_schema(
        operation_id="events_ingest", parameters=[SIGNATURE_PARAMETER],
        request=EventBatchSerializer,
        responses={202: EventBatchResultSerializer, 400: ERROR_RESPONSE, 401: ERROR_RESPONSE,
                   403: ERROR_RESPONSE, 413: ERROR_RESPONSE, 429: ERROR_RESPONSE},
    )
    def post(self, request: Request) -> Response:
        batch = request.data.get("batch") if isinstance(request.data, dict) else None
        if isinstance(batch, list) and len(batch) > MAX_BATCH:
            raise PayloadTooLarge(f"{len(batch)} events in one batch; the limit is {MAX_BATCH}.")
        events, errors = event_batch_parse(request.data)
        if errors:
            raise ApiError("Nothing was stored: fix the events listed in fields.", fields=errors)
        result = decision_delivery.events_record(
            events=events, source=f"integration {request.auth.name}"[:100])
        return Response({"accepted": result.accepted, "duplicates": result.duplicates},
                        status=status.HTTP_202_ACCEPTED)


class DecisionOutputSerializer(serializers.Serializer):
    decision_id = serializers.IntegerField()
    action = inline_serializer("DecidedAction", {
        "id": serializers.IntegerField(), "index": serializers.IntegerField(),
        "channel": serializers.CharField(help_text="The channel's key (\"none\" for no contact)."),
        "channel_label": serializers.CharField(help_text="The channel as marketers name it."),
        "offer": serializers.CharField(
            allow_null=True, help_text="The offer's key: one of the workspace's own offers."),
        "offer_label": serializers.CharField(allow_null=True),
        "variant": serializers.CharField(allow_null=True),
        "send_window": inline_serializer("DecidedSendWindow", {
            "name": serializers.CharField(help_text="The send window's key."),
            "label": serializers.CharField(),
            "start_hour": serializers.FloatField(help_text="Local start; 12.5 is 12:30."),
            "end_hour": serializers.FloatField(),
            "days": serializers.ListField(child=serializers.IntegerField(),
                                          help_text="Weekdays it opens on, 0 = Monday."),
            "time_zone": serializers.CharField(help_text="The customer's time zone."),
        }, allow_null=True),
        "label": serializers.CharField(), "contact": serializers.BooleanField(),
    })
    send_at = serializers.DateTimeField(
        allow_null=True, help_text="When to send the message (UTC): the send window's start in the "
        "customer's local time, or now if the window is open, or its next opening if it has closed "
        "today. Caps and the minimum gap are counted at this time. Null for no contact.")
    propensity = serializers.FloatField()
    holdout = serializers.BooleanField()
    policy = serializers.DictField()
    reasons = serializers.ListField(child=serializers.CharField())
    explanation_url = serializers.CharField()


_SEND_AT = serializers.DateTimeField()  # the API's one date-time format (as the status answers)


def _hour(value: float) -> int | float:
    """Whole hours as integers, as the API has always answered them (08:30 is 8.5)."""
    return int(value) if float(value).is_integer() else value


def decision_output(outcome: decision_services.DecisionOutcome) -> dict:
    decision = outcome.decision
    action = decision.action
    window = None
    if action.send_window:
        hours = vocabulary().send_window(action.send_window)
        window = {"name": action.send_window, "label": hours.label,
                  "start_hour": _hour(hours.start_hour), "end_hour": _hour(hours.end_hour),
                  "days": list(hours.days),
                  "time_zone": decision.customer.time_zone}
    return {
        "decision_id": decision.pk,
        "action": {
            "id": action.pk, "index": decision.action_index, "channel": action.channel,
            "channel_label": action.get_channel_display(),
            "offer": action.offer or None, "offer_label": action.offer_label or None,
            "variant": action.variant or None,
            "send_window": window, "label": action.label, "contact": not action.is_no_contact,
        },
        "send_at": _SEND_AT.to_representation(decision.send_at) if decision.send_at else None,
        "propensity": decision.propensity,
        "holdout": decision.holdout,
        "policy": {"name": decision.policy_name,
                   "version": decision.policy_version.version if decision.policy_version else None},
        "reasons": outcome.reasons,
        "explanation_url": reverse("decisioning:detail", args=[decision.pk]),
    }


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Any unique string of at most 255 characters. A retry with the same key and the "
    "same request gets the first answer again (no second decision); the same key with another "
    "request is refused (422).")


def _once_per_idempotency_key(request: Request, operation: str, data: dict,
                              decide: Callable[[], tuple[int, dict]]) -> tuple[int, dict]:
    """`decide()`, or the answer it gave the first time this integration sent this key."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return decide()
    if not key.strip() or len(key) > 255:
        raise ApiError("Nothing was decided: fix the fields listed.", fields={
            "Idempotency-Key": ["A non-empty string of at most 255 characters."]})
    try:
        return api_services.idempotent_answer(integration=request.auth, key=key,
                                              operation=operation, request=data, produce=decide)
    except api_services.IdempotencyKeyReused:
        raise ApiError(f"Idempotency-Key {key!r} was already used with another request.",
                       status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                       code="idempotency_key_reused") from None


def _storable_context(value: dict) -> dict:
    """A decision's free-form context, refused where the database could not store it."""
    unstorable = unstorable_json(value, "context")
    if unstorable is not None:
        raise serializers.ValidationError(f"{unstorable[0]}: {unstorable[1]}")
    return value


def _decision_error(exc: decision_services.DecisionError) -> ApiError:
    if exc.code == "conflict":
        return ApiError(next(iter(exc.fields.values()))[0], status_code=status.HTTP_409_CONFLICT,
                        code="conflict", fields=exc.fields)
    return ApiError("Nothing was decided: fix the fields listed.", fields=exc.fields)


class DecisionCreateApi(IntegrationApi):
    """The next best action for one customer in one live campaign (logged, explained)."""

    required_scope = Scope.DECISIONS_WRITE

    @extend_schema_serializer(component_name="DecisionCreateInput")
    class InputSerializer(serializers.Serializer):
        customer = serializers.CharField(max_length=200, help_text="The customer's userId.")
        campaign = serializers.IntegerField(help_text="Campaign id.")
        context = serializers.DictField(required=False, help_text="Free-form, logged as given.")

        def validate_context(self, value: dict) -> dict:
            return _storable_context(value)

    @extend_schema(operation_id="decision_create", request=InputSerializer,
                   parameters=[IDEMPOTENCY_KEY],
                   responses={201: DecisionOutputSerializer, 400: ERROR_RESPONSE,
                              401: ERROR_RESPONSE, 403: ERROR_RESPONSE, 409: ERROR_RESPONSE})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def decide() -> tuple[int, dict]:
            try:
                campaign = decision_services.campaign_for_decisions(campaign_id=data["campaign"])
                outcome = batching.decision_create(
                    campaign=campaign, customer_external_id=data["customer"],
                    context=data.get("context"))
            except decision_services.DecisionError as exc:
                raise _decision_error(exc) from None
            return status.HTTP_201_CREATED, decision_output(outcome)

        code, body = _once_per_idempotency_key(request, "decision_create", data, decide)
        return Response(body, status=code)


class DecisionBatchApi(IntegrationApi):
    """Decisions for up to 1,000 customers of one campaign in one call (all or nothing)."""

    required_scope = Scope.DECISIONS_WRITE

    @extend_schema_serializer(component_name="DecisionBatchInput")
    class InputSerializer(serializers.Serializer):
        campaign = serializers.IntegerField()
        customers = serializers.ListField(child=serializers.CharField(max_length=200),
                                          min_length=1, help_text=f"At most {MAX_BATCH} userIds.")
        context = serializers.DictField(required=False)

        def validate_context(self, value: dict) -> dict:
            return _storable_context(value)

    @extend_schema(operation_id="decisions_create_batch", request=InputSerializer,
                   parameters=[IDEMPOTENCY_KEY],
                   responses={201: inline_serializer("DecisionBatch", {
                       "decisions": DecisionOutputSerializer(many=True)}),
                       400: ERROR_RESPONSE, 413: ERROR_RESPONSE, 409: ERROR_RESPONSE})
    def post(self, request: Request) -> Response:
        customers = request.data.get("customers") if isinstance(request.data, dict) else None
        if isinstance(customers, list) and len(customers) > MAX_BATCH:
            raise PayloadTooLarge(f"{len(customers)} customers in one batch; the limit is {MAX_BATCH}.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def decide() -> tuple[int, dict]:
            try:
                campaign = decision_services.campaign_for_decisions(campaign_id=data["campaign"])
                outcomes = decision_services.decisions_create(
                    campaign=campaign, customer_external_ids=data["customers"],
                    context=data.get("context"))
            except decision_services.DecisionError as exc:
                raise _decision_error(exc) from None
            return status.HTTP_201_CREATED, {"decisions": [decision_output(o) for o in outcomes]}

        code, body = _once_per_idempotency_key(request, "decisions_create_batch", data, decide)
        return Response(body, status=code)


class DecisionStatusApi(IntegrationApi):
    """Where a decision stands now: read it before sending a scheduled message (a contact whose
    consent was withdrawn after the decision is released and must not go out)."""

    required_scope = Scope.DECISIONS_WRITE

    @extend_schema_serializer(component_name="DecisionStatus")
    class OutputSerializer(serializers.Serializer):
        decision_id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=Decision.Status.choices, help_text=(
            "decided: send it at send_at; delivered: a receipt came; released: do not send."))
        send_at = serializers.DateTimeField(allow_null=True)
        contact = serializers.BooleanField()
        released_reason = serializers.CharField(allow_null=True)

    @extend_schema(operation_id="decision_status", responses={
        200: OutputSerializer, 404: ERROR_RESPONSE})
    def get(self, request: Request, decision_id: int) -> Response:
        decision = _decision_or_404(decision_id)
        released = (decision.context or {}).get(Decision.Status.RELEASED) or {}
        return Response(self.OutputSerializer({
            "decision_id": decision.pk, "status": decision.status, "send_at": decision.send_at,
            "contact": not decision.action.is_no_contact,
            "released_reason": released.get("reason")
            if decision.status == Decision.Status.RELEASED else None,
        }).data)


def _decision_or_404(decision_id: int) -> Decision:
    decision = Decision.objects.select_related("action").filter(pk=decision_id).first()
    if decision is None:
        raise ApiError(f"Unknown decision {decision_id}.", status_code=status.HTTP_404_NOT_FOUND,
                       code="not_found")
    return decision


class DecisionReleaseApi(IntegrationApi):
    """Free the contact a decision reserved when it was never delivered (caps count it no more)."""

    required_scope = Scope.DECISIONS_WRITE

    @extend_schema_serializer(component_name="DecisionReleaseInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=200, required=False, default="released by the CRM")

    @extend_schema(operation_id="decision_release", request=InputSerializer,
                   responses={200: inline_serializer("ReleasedDecision", {
                       "decision_id": serializers.IntegerField(), "status": serializers.CharField()}),
                       404: ERROR_RESPONSE, 409: ERROR_RESPONSE})
    def post(self, request: Request, decision_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        decision = _decision_or_404(decision_id)
        try:
            decision = decision_services.decision_release(
                decision=decision, reason=serializer.validated_data["reason"])
        except decision_services.DecisionError as exc:
            raise _decision_error(exc) from None
        return Response({"decision_id": decision.pk, "status": decision.status})
