"""Single-decision requests that arrive together are decided together.

A decision's cost is mostly fixed: the row-lock read, the consent/caps read, the write, the
commit and the policy's forward pass cost about as much for 2 customers as for 1 (measured
in-process on PostgreSQL: 1 customer ~5 ms of CPU, 2 ~6 ms, 8 ~12.5 ms; the SHAP explanation is
the part that grows with the batch). So a web process with several request threads lets its
concurrent single decisions share one `decisions_create` call ("flat combining"): the first
request that finds nobody deciding becomes the leader, takes every request waiting at that moment
(its own included) and decides them as one batch on its own database connection; the others wait
and get their outcomes. Requests that arrive meanwhile form the next batch, so nothing ever waits
for a timer: a lone request is decided at once, alone, and under load the batches grow by
themselves, which is what keeps the latency flat.

Each request keeps its own answer: its context is logged with its decision alone; an unknown or
erased customer fails only its own request (the rest of the batch is decided again without it);
an unexpected failure is retried request by request so that it reaches only the request that
causes it. Two requests for the same customer go into consecutive batches, so the second one's
caps count the first one's contact, exactly as the row lock orders them across processes.

A caller inside a transaction decides alone in that transaction (the leader's commit must not be
someone else's rollback); so does everything when `DECISION_BATCH_MAX` is 1.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from crm_console.campaigns.models import Campaign
from crm_console.decisioning.services import DecisionError, DecisionOutcome, decisions_create

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class PendingDecision:
    """One single-decision request waiting for its batch."""

    campaign: Campaign
    customer_external_id: str
    context: dict[str, Any] | None
    now: datetime | None
    explain: bool
    outcome: DecisionOutcome | None = None
    error: BaseException | None = None
    done: bool = field(default=False, repr=False)

    def succeed(self, outcome: DecisionOutcome) -> None:
        self.outcome, self.done = outcome, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True

    def result(self) -> DecisionOutcome:
        if self.error is not None:
            raise self.error
        return self.outcome


class DecisionBatcher:
    """Decides concurrent single requests of one process in shared batches (see the module)."""

    def __init__(self, *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self._changed = threading.Condition()
        self._waiting: list[PendingDecision] = []
        self._deciding = False

    def decide(self, pending: PendingDecision) -> DecisionOutcome:
        """Wait for `pending`'s batch (leading it if nobody is deciding); its outcome or error.

        Inside a transaction, or with `max_batch` 1, the request is decided alone, at once.
        """
        if connection.in_atomic_block or self.max_batch == 1:
            decide_batch([pending])
            return pending.result()
        with self._changed:
            self._waiting.append(pending)
            while self._deciding and not pending.done:
                self._changed.wait()
            batch = None
            if not pending.done:
                # the leader's own request and the longest-waiting others
                self._deciding = True
                self._waiting.remove(pending)
                batch = [pending, *self._waiting[:self.max_batch - 1]]
                del self._waiting[:self.max_batch - 1]
        if batch is not None:
            try:
                decide_batch(batch)
            finally:
                with self._changed:
                    for stranded in batch:  # only after a BaseException (a worker's timeout)
                        if not stranded.done:
                            stranded.fail(RuntimeError("the batch deciding this request stopped"))
                    self._deciding = False
                    self._changed.notify_all()
        return pending.result()


def decide_batch(batch: list[PendingDecision]) -> None:
    """Decide every request of `batch`, each getting its outcome or its own error."""
    groups: dict[tuple, list[PendingDecision]] = defaultdict(list)
    for pending in batch:
        groups[(pending.campaign.pk, pending.now, pending.explain)].append(pending)
    for group in groups.values():
        for round_ in _rounds_without_repeats(group):
            _decide_together(round_)


def _rounds_without_repeats(group: list[PendingDecision]) -> list[list[PendingDecision]]:
    """Split so no round holds a customer twice: the n-th request for a customer goes in round n."""
    rounds: list[list[PendingDecision]] = []
    seen: dict[str, int] = defaultdict(int)
    for pending in group:
        n = seen[pending.customer_external_id]
        seen[pending.customer_external_id] += 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(pending)
    return rounds


def _decide_together(requests: list[PendingDecision]) -> None:
    while requests:
        first = requests[0]
        try:
            outcomes = decisions_create(
                campaign=first.campaign,
                customer_external_ids=[p.customer_external_id for p in requests],
                contexts=[p.context for p in requests], now=first.now, explain=first.explain)
        except DecisionError as exc:
            by_index = exc.fields.get("customers") if exc.code == "invalid" else None
            if not by_index:  # about the campaign: every request of it gets the same answer
                for pending in requests:
                    pending.fail(DecisionError(dict(exc.fields), code=exc.code))
                return
            for index, messages in by_index.items():
                requests[int(index)].fail(DecisionError({"customer": messages}))
            requests = [p for p in requests if not p.done]  # the others, decided again
            continue
        except Exception as exc:
            if len(requests) == 1:
                first.fail(exc)
                return
            logger.warning("a batch of %d decisions failed (%s); deciding them one by one",
                           len(requests), type(exc).__name__)
            for pending in requests:
                _decide_together([pending])
            return
        for pending, outcome in zip(requests, outcomes):
            pending.succeed(outcome)
        return


_batcher = DecisionBatcher(max_batch=settings.DECISION_BATCH_MAX)


def decision_create(
    *, campaign: Campaign, customer_external_id: str, context: dict[str, Any] | None = None,
    now: datetime | None = None, explain: bool = True,
) -> DecisionOutcome:
    """One next-best-action decision for one customer (see `services.decisions_create`).

    The edge's entry point (the API and Journey Builder call it; services never do): outside a
    transaction, concurrent calls in this process are decided together in one batch (above);
    each still gets its own outcome, or its own error on the `customer` field.
    """
    return _batcher.decide(PendingDecision(campaign=campaign,
                                           customer_external_id=customer_external_id,
                                           context=context, now=now, explain=explain))
