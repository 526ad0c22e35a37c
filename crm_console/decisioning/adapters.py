"""Channel adapters: hand decisions to whatever delivers them (the CRM, a file, an email/SMS provider).

A batch campaign run (`decisioning.batch_runs`) decides for a chunk of customers and passes
the chunk to the campaign's adapter. Adapters receive plain payloads (`decision_payload`) - never
model rows - and say what they delivered.

- `WebhookAdapter` POSTs `{"campaign_id", "decisions": [...]}` to the CRM's URL, signed exactly like
  the webhooks the console accepts: `X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
  (api.signing), so the CRM verifies us with the code it uses to sign to us.
- `FileAdapter` appends JSON lines to a file (one decision per line); `ConsoleAdapter` logs a count.
- `ProviderAdapter` routes each decision to a `MessageProvider` by channel (email, sms, push...):
  implement `send` for your provider and register it with `message_provider_register`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import requests
from django.conf import settings

from crm_console.api.signing import HEADER as SIGNATURE_HEADER
from crm_console.api.signing import signature_header

logger = logging.getLogger(__name__)


def decision_payload(decision, *, action=None, customer_external_id: str | None = None) -> dict[str, Any]:
    """What a channel needs to act on a decision (no personal data beyond the CRM's own id)."""
    action = action or decision.action
    return {
        "decision_id": decision.pk,
        "campaign_id": decision.campaign_id,
        "customer_id": customer_external_id or decision.customer.external_id,
        "action_id": action.pk,
        "channel": action.channel,
        "offer": action.offer,
        "variant": getattr(action, "variant", "") or "",
        "send_window": action.send_window,
        "no_contact": action.channel == "none",
        "propensity": decision.propensity,
        "holdout": decision.holdout,
        "decided_at": decision.decided_at.isoformat(),
        "send_at": decision.send_at.isoformat() if decision.send_at else None,
    }


@dataclass
class DeliveryResult:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    failed_decision_ids: list[int] = field(default_factory=list)


@runtime_checkable
class ChannelAdapter(Protocol):
    """Delivers a chunk of decisions; must not raise for per-decision failures (report them)."""

    name: str

    def deliver(self, decisions: list[dict[str, Any]]) -> DeliveryResult: ...


class WebhookAdapter:
    """POST decisions to the CRM, signed with the shared secret; batches of `batch_size`.

    :param url: the CRM's endpoint
    :param secret: shared signing secret
    :param batch_size: decisions per request
    :param timeout: seconds per request
    :param session: a requests.Session (tests and connection reuse)
    """

    name = "webhook"

    def __init__(self, url: str, secret: str, *, batch_size: int = 500, timeout: float = 10.0,
                 session: requests.Session | None = None):
        if not url:
            raise ValueError("the webhook adapter needs a URL")
        if not secret:
            raise ValueError("the webhook adapter needs a signing secret")
        self.url = url
        self.secret = secret
        self.batch_size = int(batch_size)
        self.timeout = timeout
        self.session = session or requests.Session()

    def deliver(self, decisions: list[dict[str, Any]]) -> DeliveryResult:
        result = DeliveryResult()
        for start in range(0, len(decisions), self.batch_size):
            batch = decisions[start:start + self.batch_size]
            body = json.dumps({"decisions": batch}, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: signature_header(self.secret, body)}
            try:
                response = self.session.post(self.url, data=body, headers=headers,
                                             timeout=self.timeout)
                ok = 200 <= response.status_code < 300
                error = "" if ok else f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                result.delivered += len(batch)
            else:
                result.failed += len(batch)
                result.errors.append(error)
                result.failed_decision_ids.extend(d["decision_id"] for d in batch)
        return result


class FileAdapter:
    """Append one JSON line per decision to `path` (a CRM import file, or a demo's record)."""

    name = "file"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def deliver(self, decisions: list[dict[str, Any]]) -> DeliveryResult:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for decision in decisions:
                handle.write(json.dumps(decision, separators=(",", ":")) + "\n")
        return DeliveryResult(delivered=len(decisions))


class ConsoleAdapter:
    """Log how many decisions went where (local development)."""

    name = "console"

    def deliver(self, decisions: list[dict[str, Any]]) -> DeliveryResult:
        channels: dict[str, int] = {}
        for decision in decisions:
            channels[decision["channel"]] = channels.get(decision["channel"], 0) + 1
        logger.info("delivered %d decisions: %s", len(decisions), channels)
        return DeliveryResult(delivered=len(decisions))


# ---------------------------------------------------------------------------------- providers
@runtime_checkable
class MessageProvider(Protocol):
    """An email / SMS / push provider. `send` returns the provider's message id; raise on failure."""

    def send(self, decision: dict[str, Any]) -> str: ...


_PROVIDERS: dict[str, Callable[[], MessageProvider]] = {}


def message_provider_register(channel: str, factory: Callable[[], MessageProvider]) -> None:
    """Register the provider that delivers `channel` (e.g. "email" -> your ESP client)."""
    _PROVIDERS[channel] = factory


class ProviderAdapter:
    """Route each decision to its channel's provider; no-contact decisions need no delivery."""

    name = "providers"

    def __init__(self, providers: dict[str, MessageProvider] | None = None):
        self.providers = providers if providers is not None else {
            channel: factory() for channel, factory in _PROVIDERS.items()}

    def deliver(self, decisions: list[dict[str, Any]]) -> DeliveryResult:
        result = DeliveryResult()
        for decision in decisions:  # providers take one message at a time
            if decision["no_contact"]:
                result.delivered += 1
                continue
            provider = self.providers.get(decision["channel"])
            try:
                if provider is None:
                    raise LookupError(f"no provider registered for {decision['channel']!r}")
                provider.send(decision)
                result.delivered += 1
            except Exception as exc:  # one provider failure must not lose the rest of the chunk
                result.failed += 1
                result.errors.append(f"{type(exc).__name__}: {exc}")
                result.failed_decision_ids.append(decision["decision_id"])
        return result


def adapter_from_spec(spec: dict[str, Any] | None) -> ChannelAdapter:
    """Build an adapter from a plain spec (Celery-friendly): {"kind": "webhook", "url": ...}.

    Default (no spec): settings.DECISION_ADAPTER if set, else a file under var/decisions/.
    The webhook secret comes from the spec or settings.DECISION_WEBHOOK_SECRET.
    """
    spec = dict(spec or getattr(settings, "DECISION_ADAPTER", None) or {"kind": "file"})
    kind = spec.pop("kind", "file")
    if kind == "webhook":
        secret = spec.pop("secret", None) or getattr(settings, "DECISION_WEBHOOK_SECRET", "")
        return WebhookAdapter(spec.pop("url", ""), secret, **spec)
    if kind == "file":
        default = Path(getattr(settings, "VAR_DIR", Path("var"))) / "decisions" / "decisions.jsonl"
        return FileAdapter(spec.get("path") or default)
    if kind == "console":
        return ConsoleAdapter()
    if kind == "providers":
        return ProviderAdapter()
    raise ValueError(f"unknown adapter kind {kind!r}: webhook, file, console or providers")
