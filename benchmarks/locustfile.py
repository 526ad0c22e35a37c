"""Load for benchmarks/api_load.py (locust): single decisions at a fixed rate, and event batches.

    locust -f benchmarks/locustfile.py --headless --host http://127.0.0.1:8765 DecisionUser ...

Reads BENCH_TOKEN, BENCH_SECRET, BENCH_CAMPAIGN, BENCH_CUSTOMERS (how many "bench-<i>" customers
exist), BENCH_RATE_PER_USER (decisions per second per simulated user), BENCH_BATCH (events per
batch) from the environment; api_load.py sets them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import random
import time
import uuid
from datetime import datetime, timezone

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

TOKEN = os.environ.get("BENCH_TOKEN", "")
SECRET = os.environ.get("BENCH_SECRET", "")
CAMPAIGN = int(os.environ.get("BENCH_CAMPAIGN", "1"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "1000"))
RATE_PER_USER = float(os.environ.get("BENCH_RATE_PER_USER", "1"))
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
_counter = itertools.count()


def poisson_arrivals(rate_per_user: float):
    """A wait_time that makes the users together an open-loop Poisson stream of requests.

    Each user schedules its next request an exponential gap after the previous one was due, not
    after it finished, and starts at a random moment. `constant_throughput` instead keeps every
    user on the schedule of its spawn time: users spawned together fire together, every second,
    and the benchmark measures a burst queueing behind itself rather than a steady rate.
    """
    def wait_time(user) -> float:
        now = time.monotonic()
        due = getattr(user, "next_request_due", None)
        due = (now + random.expovariate(rate_per_user)) if due is None else \
            due + random.expovariate(rate_per_user)
        user.next_request_due = max(due, now - 1.0 / rate_per_user)  # after a stall: no catch-up burst
        return max(0.0, user.next_request_due - now)
    return wait_time


def sign(body: bytes) -> str:
    t = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


class DecisionUser(FastHttpUser):
    """One CRM front-end asking for next best actions, Poisson arrivals at RATE_PER_USER per second."""

    wait_time = poisson_arrivals(RATE_PER_USER)

    def on_start(self) -> None:
        time.sleep(random.expovariate(RATE_PER_USER))  # gevent-patched: users start spread out

    @task
    def decide(self) -> None:
        customer = f"bench-{random.randrange(CUSTOMERS)}"
        body = json.dumps({"customer": customer, "campaign": CAMPAIGN,
                           "context": {"source": "load test"}})
        self.client.post("/api/v1/decisions", data=body, name="POST /api/v1/decisions",
                         headers={"Authorization": f"Bearer {TOKEN}",
                                  "Content-Type": "application/json"})


class RefusedDecisionUser(FastHttpUser):
    """DecisionUser's request without its customer, refused (400) by the input check before any
    decision work: what gunicorn, Django, DRF (token, throttle, parsing, the error body) and the
    load generator cost per request on their own - the floor under every decision."""

    wait_time = poisson_arrivals(RATE_PER_USER)

    def on_start(self) -> None:
        time.sleep(random.expovariate(RATE_PER_USER))

    @task
    def decide(self) -> None:
        body = json.dumps({"campaign": CAMPAIGN, "context": {"source": "load test"}})
        with self.client.post("/api/v1/decisions", data=body, name="POST /api/v1/decisions (refused)",
                              headers={"Authorization": f"Bearer {TOKEN}",
                                       "Content-Type": "application/json"},
                              catch_response=True) as response:
            if response.status_code == 400:
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class EventBatchUser(FastHttpUser):
    """A CRM pushing its event stream as fast as the webhook takes it."""

    wait_time = between(0, 0)

    @task
    def send_batch(self) -> None:
        now = datetime.now(timezone.utc).isoformat()
        run = uuid.uuid4().hex[:8]
        events = []
        for i in range(BATCH):
            n = next(_counter)
            kind = n % 4
            customer = f"bench-{random.randrange(CUSTOMERS)}"
            if kind == 0:
                events.append({"type": "track", "event": "Order Completed", "userId": customer,
                               "messageId": f"{run}-{n}", "timestamp": now,
                               "properties": {"revenue": 20.0 + n % 50}})
            elif kind == 3:
                events.append({"type": "identify", "userId": customer, "messageId": f"{run}-{n}",
                               "timestamp": now, "traits": {"plan": "gold"}})
            else:
                events.append({"type": "track", "userId": customer, "messageId": f"{run}-{n}",
                               "timestamp": now,
                               "event": "Email Opened" if kind == 1 else "Product Viewed",
                               "properties": {"channel": "email"}})
        body = json.dumps({"batch": events}).encode()
        with self.client.post("/api/v1/events", data=body, name="POST /api/v1/events",
                              headers={"Authorization": f"Bearer {TOKEN}",
                                       "Content-Type": "application/json",
                                       "X-Signature": sign(body)},
                              catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"{response.status_code}: {response.text[:200]}")
