"""Channel adapters: the webhook-out adapter signs like the inbound webhooks; file and providers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from crm_console.api.signing import SignatureError, signature_verify
from crm_console.decisioning.adapters import (
    FileAdapter, ProviderAdapter, WebhookAdapter, adapter_from_spec,
)

SECRET = "crm-shared-secret"


def payload(decision_id: int, channel: str = "email") -> dict:
    return {"decision_id": decision_id, "campaign_id": 1, "customer_id": f"cust-{decision_id}",
            "action_id": 7, "channel": channel, "offer": "content", "variant": "default",
            "send_window": "morning", "no_contact": channel == "none", "propensity": 0.5,
            "holdout": False, "decided_at": "2026-11-22T07:00:00+00:00"}


@pytest.fixture
def crm_server():
    """A CRM on 127.0.0.1 that verifies every request's signature like our own API does."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                signature_verify(secret=SECRET, header=self.headers.get("X-Signature"), body=body)
                status = 204
                received.append({"body": json.loads(body), "signature": self.headers["X-Signature"]})
            except SignatureError:
                status = 401
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/decisions", received
    server.shutdown()
    server.server_close()


def test_webhook_adapter_signs_each_request_so_the_crm_can_verify_it(crm_server):
    url, received = crm_server
    result = WebhookAdapter(url, SECRET, batch_size=2).deliver([payload(i) for i in range(5)])

    assert (result.delivered, result.failed) == (5, 0)
    assert len(received) == 3  # batches of 2, 2, 1
    assert [d["decision_id"] for r in received for d in r["body"]["decisions"]] == [0, 1, 2, 3, 4]
    assert all(r["signature"].startswith("t=") and ",v1=" in r["signature"] for r in received)


def test_webhook_adapter_signed_with_the_wrong_secret_is_refused_and_reported(crm_server):
    url, received = crm_server
    result = WebhookAdapter(url, "not-the-secret").deliver([payload(1), payload(2)])
    assert (result.delivered, result.failed) == (0, 2)
    assert result.failed_decision_ids == [1, 2]
    assert result.errors == ["HTTP 401"]
    assert received == []


def test_webhook_adapter_reports_an_unreachable_crm_without_raising():
    result = WebhookAdapter("http://127.0.0.1:9/none", SECRET, timeout=1).deliver([payload(1)])
    assert result.failed == 1 and "ConnectionError" in result.errors[0]


def test_webhook_adapter_needs_a_url_and_a_secret():
    with pytest.raises(ValueError, match="URL"):
        WebhookAdapter("", SECRET)
    with pytest.raises(ValueError, match="secret"):
        WebhookAdapter("http://127.0.0.1/", "")


def test_file_adapter_appends_one_json_line_per_decision(tmp_path):
    path = tmp_path / "out" / "decisions.jsonl"
    FileAdapter(path).deliver([payload(1), payload(2)])
    FileAdapter(path).deliver([payload(3)])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["decision_id"] for line in lines] == [1, 2, 3]


def test_provider_adapter_routes_by_channel_and_reports_failures():
    sent = []

    class Email:
        def send(self, decision):
            sent.append(decision["decision_id"])
            return "esp-123"

    class BrokenSms:
        def send(self, decision):
            raise TimeoutError("gateway down")

    result = ProviderAdapter({"email": Email(), "sms": BrokenSms()}).deliver(
        [payload(1, "email"), payload(2, "sms"), payload(3, "push"), payload(4, "none")])

    assert sent == [1]
    assert result.delivered == 2  # the email and the no-contact decision
    assert result.failed_decision_ids == [2, 3]
    assert any("gateway down" in e for e in result.errors)


def test_adapter_from_spec_builds_each_kind(tmp_path, settings):
    settings.DECISION_WEBHOOK_SECRET = SECRET
    assert isinstance(adapter_from_spec({"kind": "webhook", "url": "http://127.0.0.1/x"}),
                      WebhookAdapter)
    assert isinstance(adapter_from_spec({"kind": "file", "path": str(tmp_path / "d.jsonl")}),
                      FileAdapter)
    with pytest.raises(ValueError, match="unknown adapter kind"):
        adapter_from_spec({"kind": "carrier-pigeon"})
