"""Concurrent single decisions of one process are decided together, each keeping its own answer."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction

from crm_console.decisioning import batching
from crm_console.decisioning import services as decision_services
from crm_console.decisioning.batching import DecisionBatcher, PendingDecision, decide_batch
from crm_console.decisioning.models import Decision
from crm_console.decisioning.services import DecisionError
from tests.console.api.helpers import customer_with_consent, live_campaign

pytestmark = pytest.mark.django_db


def pending(campaign, external_id: str, **context) -> PendingDecision:
    return PendingDecision(campaign=campaign, customer_external_id=external_id,
                           context=context or None, now=None, explain=True)


def test_a_batch_decides_every_request_with_its_own_context():
    campaign = live_campaign()
    requests = [pending(campaign, customer_with_consent(f"c{i}").external_id, trigger=f"t{i}")
                for i in range(4)]
    decide_batch(requests)
    for i, request in enumerate(requests):
        assert request.error is None
        decision = request.outcome.decision
        assert decision.customer.external_id == f"c{i}"
        assert decision.context == {"trigger": f"t{i}"}
        assert Decision.objects.get(pk=decision.pk).context == {"trigger": f"t{i}"}
    assert len({r.outcome.decision.decided_at for r in requests}) == 1  # one batch, one moment


def test_an_unknown_customer_fails_only_its_own_request():
    campaign = live_campaign()
    customer_with_consent("known-1")
    customer_with_consent("known-2")
    requests = [pending(campaign, "known-1"), pending(campaign, "nobody"), pending(campaign, "known-2")]
    decide_batch(requests)
    assert isinstance(requests[1].error, DecisionError)
    assert "Unknown customer 'nobody'" in requests[1].error.fields["customer"][0]
    assert [requests[0].outcome.decision.customer.external_id,
            requests[2].outcome.decision.customer.external_id] == ["known-1", "known-2"]
    assert Decision.objects.count() == 2


def test_repeated_requests_for_one_customer_are_decided_in_turn_and_respect_the_caps():
    campaign = live_campaign(caps={"email": (1, 7), "sms": (0, 7)}, overall=(1, 7))
    for i in range(10):
        customer_with_consent(f"c{i}", channels=("email",))
    requests = [pending(campaign, f"c{i}") for _ in range(3) for i in range(10)]
    decide_batch(requests)
    assert all(r.error is None for r in requests)  # not "appears twice in the batch"
    contacts = Counter(r.outcome.decision.customer.external_id for r in requests
                       if not r.outcome.decision.action.is_no_contact)
    assert contacts  # the random policy contacts some of the ten
    assert max(contacts.values()) == 1  # each later request counted the earlier contact


def test_a_campaign_level_refusal_answers_each_of_its_requests_and_no_other(monkeypatch):
    broken = live_campaign(name="Broken campaign")
    working = live_campaign(name="Working campaign")
    customer_with_consent("c1")
    customer_with_consent("c2")
    real = decision_services.decisions_create

    def refusing(*, campaign, **kwargs):
        if campaign.pk == broken.pk:
            raise DecisionError({"campaign": ["Refused for this campaign."]}, code="conflict")
        return real(campaign=campaign, **kwargs)

    monkeypatch.setattr(batching, "decisions_create", refusing)
    requests = [pending(broken, "c1"), pending(working, "c1"), pending(broken, "c2")]
    decide_batch(requests)
    assert [r.error.code for r in (requests[0], requests[2])] == ["conflict"] * 2
    assert requests[0].error is not requests[2].error  # each request raises its own
    assert requests[1].error is None and requests[1].outcome.decision.campaign_id == working.pk


def test_an_unexpected_failure_reaches_only_the_request_that_causes_it(monkeypatch):
    campaign = live_campaign()
    for name in ("a", "poison", "b"):
        customer_with_consent(name)
    real = decision_services.decisions_create

    def failing_for_poison(**kwargs):
        if "poison" in kwargs["customer_external_ids"]:
            raise RuntimeError("poisoned input")
        return real(**kwargs)

    monkeypatch.setattr(batching, "decisions_create", failing_for_poison)
    requests = [pending(campaign, "a"), pending(campaign, "poison"), pending(campaign, "b")]
    decide_batch(requests)
    assert str(requests[1].error) == "poisoned input"
    assert requests[0].outcome.decision.pk and requests[2].outcome.decision.pk
    assert Decision.objects.count() == 2


def test_a_decision_inside_a_transaction_is_decided_there_not_batched(monkeypatch):
    campaign = live_campaign()
    customer_with_consent("c1")

    class NoQueue:  # the shared queue's lock: taking it means the request was queued
        def __enter__(self):
            raise AssertionError("batched inside the caller's transaction")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(batching._batcher, "_changed", NoQueue())
    with transaction.atomic():
        outcome = batching.decision_create(campaign=campaign, customer_external_id="c1")
    assert outcome.decision.pk


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        DecisionBatcher(max_batch=0)


# --------------------------------------------------------------------------- threads, own connections
def _decide_in_threads(batcher: DecisionBatcher, requests: list[PendingDecision]) -> list:
    """Each request from its own thread while a decision is under way, then released together."""
    results: list = [None] * len(requests)

    def worker(i: int) -> None:
        try:
            results[i] = batcher.decide(requests[i])
        except BaseException as exc:  # surfaced by the assertions
            results[i] = exc
        finally:
            connection.close()

    with batcher._changed:  # someone is deciding: every request that arrives must wait
        batcher._deciding = True
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(batcher._waiting) < len(requests) and time.monotonic() < deadline:
        time.sleep(0.01)
    with batcher._changed:  # that decision ends: one waiting request leads the next batch
        batcher._deciding = False
        batcher._changed.notify_all()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.django_db(transaction=True)
def test_requests_waiting_together_are_decided_in_one_batch_by_one_of_them():
    campaign = live_campaign()
    requests = [pending(campaign, customer_with_consent(f"c{i}").external_id, n=i) for i in range(6)]
    outcomes = _decide_in_threads(DecisionBatcher(max_batch=64), requests)
    assert all(isinstance(o, decision_services.DecisionOutcome) for o in outcomes), outcomes
    assert [o.decision.context for o in outcomes] == [{"n": i} for i in range(6)]
    assert len({o.decision.decided_at for o in outcomes}) == 1  # one batch
    assert Decision.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_batches_hold_at_most_max_batch_requests():
    campaign = live_campaign()
    requests = [pending(campaign, customer_with_consent(f"c{i}").external_id) for i in range(5)]
    outcomes = _decide_in_threads(DecisionBatcher(max_batch=2), requests)
    batch_sizes = Counter(o.decision.decided_at for o in outcomes)
    assert sorted(batch_sizes.values()) == [1, 2, 2]


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_stops_fails_its_waiting_requests_instead_of_leaving_them_waiting(monkeypatch):
    campaign = live_campaign()
    requests = [pending(campaign, customer_with_consent(f"c{i}").external_id) for i in range(3)]

    def stopped(_batch):
        raise SystemExit("worker timeout")

    monkeypatch.setattr(batching, "decide_batch", stopped)
    results = _decide_in_threads(DecisionBatcher(), requests)
    assert sorted(type(r).__name__ for r in results) == ["RuntimeError", "RuntimeError", "SystemExit"]
