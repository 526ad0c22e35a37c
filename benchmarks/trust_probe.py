"""Trust probe (issue 18): every finding of the hardening issue replayed against the real stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_console_probe \\
    REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python benchmarks/trust_probe.py

Starts gunicorn as gunicorn.conf.py runs it (production settings, DEBUG off) on a fresh campaign
(benchmarks/api_load.py's `setup`), sends each malformed or hostile request a faulty CRM or an
attacker would, and prints one line per probe and the tally "tried / refused cleanly / 5xx".
Refused cleanly means: the status the issue asks for, the documented error JSON
({"error": {"code", "message"}}) and not one event or decision written. A second gunicorn whose
Redis is a closed port replays "Redis down". The findings about people (the Django admin, erasure,
the audit, a dead worker's run, log-in throttling, CSP) are replayed by console users of each role
with sessions of their own; erasure is checked by reading every table's rows as text. Exit status 1 if any probe answered 5xx or was not
refused cleanly. Loopback only; every request has a timeout.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_load  # noqa: E402  (the same set-up, gunicorn and machine description)

CLOSED_REDIS = "redis://127.0.0.1:6390/0"


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def error_json(self) -> bool:
        try:
            error = json.loads(self.body)["error"]
        except (ValueError, KeyError, TypeError):
            return False
        return isinstance(error, dict) and {"code", "message"} <= set(error)


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
            chunked: bool = False) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if chunked:
            connection.putrequest(method, path)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            connection.send(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        else:
            connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.read(), dict(response.getheaders()))
    finally:
        connection.close()


class Crm:
    """A CRM integration talking to one gunicorn: signed events, token-only decisions."""

    def __init__(self, port: int, token: str, secret: str, campaign: int):
        self.port, self.token, self.secret, self.campaign = port, token, secret, campaign

    def events(self, raw: bytes, *, chunked: bool = False, token: str | None = None) -> Answer:
        from crm_console.api.signing import signature_header

        headers = {"Authorization": f"Bearer {token or self.token}",
                   "Content-Type": "application/json",
                   "X-Signature": signature_header(self.secret, raw)}
        return request(self.port, "POST", "/api/v1/events", raw, headers, chunked=chunked)

    def decide(self, raw: bytes, *, key: str | None = None, path: str = "/api/v1/decisions") -> Answer:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        return request(self.port, "POST", path, raw, headers)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def track(message_id: str, properties: dict | None = None, **fields) -> dict:
    return {"type": "track", "userId": "bench-1", "messageId": message_id,
            "event": fields.pop("event", "Email Opened"), "properties": properties or {},
            "timestamp": fields.pop("timestamp", now_iso()), **fields}


def identify(message_id: str, traits: dict) -> dict:
    return {"type": "identify", "userId": "bench-1", "messageId": message_id, "traits": traits,
            "timestamp": now_iso()}


def batch(*events: dict) -> bytes:
    return json.dumps({"batch": list(events)}).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@dataclass
class Probe:
    item: str
    what: str
    send: Callable[[], Answer]
    expected: tuple[int, ...]
    error_json: bool = True  # the answer must be the documented error JSON
    writes_nothing: bool = True
    must_not_contain: bytes = b""  # e.g. Django's debug page listing every URL
    holds: Callable[[Answer], bool] | None = None  # what else must be true afterwards


def written() -> tuple[int, int]:
    from crm_console.customers.models import Event
    from crm_console.decisioning.models import Decision

    return Event.objects.count(), Decision.objects.count()


def probes(crm: Crm, down: Crm, revoked_token: str) -> list[Probe]:
    campaign = crm.campaign
    decision = json.dumps({"customer": "bench-1", "campaign": campaign}).encode()
    return [
        Probe("3", "NUL character in an event's properties",
              lambda: crm.events(batch(track("p-nul", {"note": "a\u0000b"}))), (400,)),
        Probe("3", "lone surrogate in an event's properties",
              lambda: crm.events(b'{"batch": [' + json.dumps(track("p-sur"))[:-1].encode()
                                 + b', "x": "\\ud800"}]}'), (400,)),
        Probe("3", "properties.channel as a list",
              lambda: crm.events(batch(track("p-ch1", {"channel": ["email"]}))), (400,)),
        Probe("3", "properties.channel as an object",
              lambda: crm.events(batch(track("p-ch2", {"channel": {"k": "email"}}))), (400,)),
        Probe("3", "traits.email as a number",
              lambda: crm.events(batch(identify("p-em1", {"email": 42}))), (400,)),
        Probe("3", "traits.email as an object",
              lambda: crm.events(batch(identify("p-em2", {"email": {"a": 1}}))), (400,)),
        Probe("3", "traits.email longer than 254 characters",
              lambda: crm.events(batch(identify("p-em3", {"email": "a" * 250 + "@x.com"}))),
              (400,)),
        Probe("3", 'decision_id "²" (a digit to Python, not an id)',
              lambda: crm.events(batch(track("p-did", {"decision_id": "²"}))), (400,)),
        Probe("3", "timestamp that overflows when turned to UTC",
              lambda: crm.events(batch(track("p-ovf", timestamp="9999-12-31T23:59:59-23:59"))),
              (400,)),
        Probe("3", "JSON nested 3,000 deep in an event",
              lambda: crm.events(b'{"batch": [' + json.dumps(track("p-deep"))[:-1].encode()
                                 + b', "x": ' + nested(3000).encode() + b"}]}"), (400,)),
        Probe("3", "JSON nested 3,000 deep in a decision's context",
              lambda: crm.decide(decision[:-1] + b', "context": {"x": '
                                 + nested(3000).encode() + b"}}"), (400,)),
        Probe("3", "NUL character in a decision's context",
              lambda: crm.decide(json.dumps({"customer": "bench-1", "campaign": campaign,
                                             "context": {"note": "a\u0000b"}}).encode()), (400,)),
        Probe("3", "chunked body without Content-Length",
              lambda: crm.events(batch(track("p-chunk")), chunked=True), (411,)),
        Probe("3", "3 MiB body", lambda: crm.events(b" " * (3 * 1024 * 1024)), (413,)),
        Probe("3", "unknown API URL answers the error JSON",
              lambda: request(crm.port, "GET", "/api/v1/no-such-thing"), (404,)),
        Probe("2", "a revoked token after Redis lost every key",
              lambda: crm.events(batch(track("p-rev")), token=revoked_token), (401,)),
        Probe("10", "revenue of 1.7e308",
              lambda: crm.events(batch(track("p-rev1", {"revenue": 1.7e308},
                                             event="Order Completed"))), (400,)),
        Probe("10", "timestamp in the year 9999",
              lambda: crm.events(batch(track("p-9999", timestamp="9999-01-01T00:00:00Z"))),
              (400,)),
        Probe("10", "Idempotency-Key reused with another body",
              lambda: (crm.decide(decision, key="probe-key"),
                       crm.decide(json.dumps({"customer": "bench-2", "campaign": campaign})
                                  .encode(), key="probe-key"))[1], (422,), writes_nothing=False),
        Probe("4", "console 404 with DEBUG off lists no URLs",
              lambda: request(crm.port, "GET", "/no-such-page/"), (404, 302), error_json=False,
              must_not_contain=b"URLconf"),
        Probe("8", "Redis down: events are still taken",
              lambda: down.events(batch(track("p-down-ev"))), (202,), error_json=False,
              writes_nothing=False),
        Probe("8", "Redis down: a decision is still made or refused with a JSON 503",
              lambda: down.decide(json.dumps({"customer": "bench-3", "campaign": campaign})
                                  .encode()), (201, 503), error_json=False, writes_nothing=False),
    ]


class Person:
    """Someone logged in to the console with a role: a session made as Django's test client's
    `force_login` makes one, and a CSRF token of its own (cookie and header, as htmx sends it)."""

    CSRF = "probeprobeprobeprobeprobeprobe01"

    def __init__(self, port: int, role: str, *, password: str = "") -> None:
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.contrib.auth import get_user_model

        from crm_console.accounts.services import user_role_set

        self.port = port
        self.username = f"probe-{role.split()[0].lower()}-{time.time_ns()}"
        self.user = get_user_model().objects.create_user(self.username, password=password or None)
        user_role_set(user=self.user, role=role)
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = str(self.user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = self.user.get_session_auth_hash()
        session.save()
        self.cookie = (f"{settings.SESSION_COOKIE_NAME}={session.session_key}; "
                       f"{settings.CSRF_COOKIE_NAME}={self.CSRF}")

    def get(self, path: str) -> Answer:
        return request(self.port, "GET", path, headers={"Cookie": self.cookie})

    def post(self, path: str, fields: dict[str, str], *, cookie: str | None = None) -> Answer:
        from urllib.parse import urlencode

        return request(self.port, "POST", path, urlencode(fields).encode(), {
            "Cookie": self.cookie if cookie is None else cookie, "X-CSRFToken": self.CSRF,
            "Content-Type": "application/x-www-form-urlencoded"})


def personal_data_left(secrets: list[str]) -> int:
    """Rows of any table whose text still holds one of the secrets (PostgreSQL: a row as text)."""
    from django.apps import apps
    from django.db import connection

    found = 0
    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = connection.ops.quote_name(model._meta.db_table)
            for secret in secrets:
                cursor.execute(f"SELECT count(*) FROM {table} AS row WHERE row::text ILIKE %s",
                               [f"%{secret}%"])
                found += cursor.fetchone()[0]
    return found


def erasure_subject(crm: Crm) -> tuple[int, list[str]]:
    """A customer known through the API: identified with an email and phone, decided for with
    their email in the decision's context. Returns their id and what erasure must remove."""
    from crm_console.customers.models import Customer

    stamp = time.time_ns()
    external_id, email, phone = f"probe-erase-{stamp}", f"erase-{stamp}@example.com", f"+4479{stamp % 10**8:08d}"
    crm.events(json.dumps({"batch": [{
        "type": "identify", "userId": external_id, "messageId": f"p-erase-{stamp}",
        "traits": {"email": email, "phone": phone}, "timestamp": now_iso()}]}).encode())
    crm.decide(json.dumps({"customer": external_id, "campaign": crm.campaign,
                           "context": {"note": f"asked by {email}"}}).encode())
    return Customer.objects.get(external_id=external_id).pk, [external_id, email, phone]


def stale_run() -> int:
    """A run whose worker died mid-way: it last saved progress ten minutes ago, "58 s left"."""
    from crm_console.campaigns.models import Campaign
    from crm_console.training.models import TrainingRun

    from django.utils import timezone

    run = TrainingRun.objects.create(
        campaign=Campaign.objects.filter(status=Campaign.Status.LIVE).latest("pk"),
        status=TrainingRun.Status.RUNNING, progress=0.9, eta_seconds=58,
        started_at=timezone.now(), report={"heartbeat_at": time.time() - 600})
    return run.pk


def console_probes(port: int, crm: Crm) -> list[Probe]:
    """The findings about people: the admin, erasure, the audit, log-in throttling, CSP, stale runs."""
    from django.conf import settings

    from crm_console.accounts.roles import ADMIN, COMPLIANCE_REVIEWER, MARKETER
    from crm_console.compliance.models import AuditEntry
    from crm_console.customers.models import Consent

    marketer, reviewer, admin = Person(port, MARKETER), Person(port, COMPLIANCE_REVIEWER), Person(port, ADMIN)
    locked = Person(port, MARKETER, password="the-right-password-4711")
    consent = Consent.objects.filter(granted=False).first() or Consent.objects.first()
    subject, secrets = erasure_subject(crm)
    run = stale_run()
    today = datetime.now(timezone.utc).date().isoformat()

    def wrong_then_right() -> Answer:
        for attempt in range(settings.AXES_FAILURE_LIMIT):
            locked.post("/accounts/login/", {"username": locked.username, "password": f"wrong-{attempt}"},
                        cookie=f"{settings.CSRF_COOKIE_NAME}={Person.CSRF}")
        return locked.post("/accounts/login/", {"username": locked.username,
                                                "password": "the-right-password-4711"},
                           cookie=f"{settings.CSRF_COOKIE_NAME}={Person.CSRF}")

    return [
        Probe("6", "a reviewer opens the Django admin", lambda: reviewer.get("/admin/"), (403,),
              error_json=False),
        Probe("6", "a marketer opens customers in the Django admin",
              lambda: marketer.get("/admin/customers/customer/"), (403,), error_json=False),
        Probe("6", "an admin flips a consent in the Django admin (read-only there)",
              lambda: admin.post(f"/admin/customers/consent/{consent.pk}/change/",
                                 {"granted": "on", "channel": consent.channel}), (403,),
              error_json=False,
              holds=lambda _: Consent.objects.get(pk=consent.pk).granted == consent.granted),
        Probe("5", "erasure leaves the subject's id, email and phone in no table",
              lambda: reviewer.post(f"/compliance/subject-requests/{subject}/erase/",
                                    {"reason": "Subject's request (probe)", "confirm": "ERASE"}),
              (302,), error_json=False, holds=lambda _: personal_data_left(secrets) == 0),
        Probe("7", "an audit export is itself audited, under the reviewer's name",
              lambda: reviewer.get(f"/compliance/audit/export.csv?start={today}&end={today}"),
              (200,), error_json=False,
              holds=lambda _: AuditEntry.objects.filter(verb="audit_log.exported",
                                                        actor=reviewer.user).exists()),
        Probe("9", "a run whose worker died says so, not '58 s left'",
              lambda: marketer.get(f"/training/{run}/"), (200,), error_json=False,
              holds=lambda answer: b"seems to have stopped" in answer.body),
        Probe("10", f"the right password after {settings.AXES_FAILURE_LIMIT} wrong ones is refused",
              wrong_then_right, (429,), error_json=False,
              holds=lambda answer: settings.SESSION_COOKIE_NAME not in answer.headers.get("Set-Cookie", "")),
        Probe("10", "console pages carry a Content-Security-Policy",
              lambda: marketer.get("/campaigns/"), (200,), error_json=False,
              holds=lambda answer: "default-src 'self'" in answer.headers.get(
                  "Content-Security-Policy", "")),
    ]


def revoked_after_redis_flush(env: dict[str, str]) -> str:
    """An integration used once (so the web processes cache it), revoked, then Redis flushed."""
    import redis

    from crm_console.api.models import ApiIntegration
    from crm_console.api.services import api_integration_create, api_integration_revoke

    creds = api_integration_create(name=f"Probe revoked {time.time():.0f}",
                                   scopes=["events:write"])
    Crm(int(env["PROBE_PORT"]), creds.token, creds.signing_secret, 0).events(
        batch(track(f"p-warm-{time.time():.0f}")))
    api_integration_revoke(integration=ApiIntegration.objects.get(pk=creds.integration.pk))
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    return creds.token


def main() -> None:
    env = api_load.environment()
    os.environ.update(env)
    api_load.database_create(env["DATABASE_URL"])
    env.update(api_load.setup(customers=10))
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)  # as the real stack serves pages
    port, down_port = api_load.free_port(), api_load.free_port()
    env["PROBE_PORT"] = str(port)
    servers = [api_load.gunicorn_start(env, port, 1, 4),
               api_load.gunicorn_start({**env, "REDIS_URL": CLOSED_REDIS}, down_port, 1, 4)]
    try:
        revoked = revoked_after_redis_flush(env)
        crm = Crm(port, env["BENCH_TOKEN"], env["BENCH_SECRET"], int(env["BENCH_CAMPAIGN"]))
        down = Crm(down_port, env["BENCH_TOKEN"], env["BENCH_SECRET"], crm.campaign)
        tally = {"tried": 0, "refused cleanly": 0, "5xx": 0}
        failures = []
        print(f"Trust probe, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{api_load.machine()}\n")
        print("| item | probe | status | refused cleanly |\n|---|---|---|---|")
        for probe in probes(crm, down, revoked) + console_probes(port, crm):
            before = written()
            answer = probe.send()
            clean = (answer.status in probe.expected
                     and (not probe.error_json or answer.error_json())
                     and (not probe.writes_nothing or written() == before)
                     and not (probe.must_not_contain and probe.must_not_contain in answer.body)
                     and (probe.holds is None or probe.holds(answer)))
            tally["tried"] += 1
            tally["refused cleanly"] += clean
            tally["5xx"] += answer.status >= 500 and answer.status not in probe.expected
            if not clean:
                failures.append(probe.what)
            print(f"| {probe.item} | {probe.what} | {answer.status} | {'yes' if clean else 'NO'} |")
        print(f"\ntried {tally['tried']} / refused cleanly {tally['refused cleanly']} / "
              f"5xx {tally['5xx']}")
        if failures:
            print("not refused cleanly: " + "; ".join(failures))
        print("this script: `benchmarks/trust_probe.py`")
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    sys.exit(1 if failures or tally["5xx"] else 0)


if __name__ == "__main__":
    main()
