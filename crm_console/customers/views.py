"""Customer pages: the list and each customer's timeline (events and decisions in order, consent
history, and the features the policy sees now, in marketer words)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers import selectors
from crm_console.customers.models import Customer
from crm_console.customers.services import profile_states_load

TIMELINE_ITEMS = 200


def customer_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = Paginator(selectors.customer_list(search=search), 50).get_page(request.GET.get("page"))
    return render(request, "customers/customer_list.html", {"page": page, "search": search})


@dataclass
class TimelineItem:
    at: datetime
    kind: str
    """"decision" or "event"."""
    title: str
    detail: str
    obj: Any


def _timeline(customer: Customer, limit: int) -> list[TimelineItem]:
    """The latest `limit` events and decisions merged, oldest first (a story reads forwards)."""
    events = list(customer.events.order_by("-timestamp", "-id")[:limit])
    decisions = list(customer.decisions.select_related("action", "campaign", "policy_version")
                     .order_by("-decided_at", "-id")[:limit])
    items = [TimelineItem(e.timestamp, "event", e.name or e.get_type_display(),
                          ", ".join(f"{k}: {v}" for k, v in (e.properties or {}).items()
                                    if k != "decision_id"), e) for e in events]
    items += [TimelineItem(d.decided_at, "decision", d.action.label,
                           f"{d.campaign.name} · {'holdout' if d.holdout else 'policy'} · "
                           f"propensity {d.propensity:.0%}", d) for d in decisions]
    items.sort(key=lambda item: (item.at, 0 if item.kind == "decision" else 1))
    return items[-limit:]


def _features(customer: Customer) -> list[tuple[str, str, str, float]]:
    """(name, marketer label, value in words) of the customer's current state vector."""
    from agents.explain import feature_phrase
    from agents.features import observation, raw_feature_values
    if not customer.profile_state:
        return []
    try:
        profile, _ = profile_states_load([customer], at=customer.profile_updated_at or timezone.now())
        obs = observation(profile)[0]
        layout = vocabulary().feature_layout
        raw, extras = raw_feature_values(profile, layout.channels)
    except (KeyError, ValueError, TypeError):
        return []
    extra_row = {k: float(v[0]) for k, v in extras.items()}
    # a decayed counter is a weight ("7.8 email contacts"): beside it, the real count of the log
    sent = selectors.customer_contact_counts(customer=customer, days=30)
    counters = {f"{channel}_contacts": channel for channel in layout.channels}
    rows = []
    for i, name in enumerate(layout.names):
        value = float(raw[name][0]) if name in raw else float(obs[i])
        try:
            words = feature_phrase(name, value, extra_row, layout.labels)
        except Exception:  # a phrase is a nicety; the number is always shown
            words = f"{value:.3g}" if np.isfinite(value) else "never"
        if name in counters:
            count = sent.get(counters[name], 0)
            words = (f"{count} sent in the last 30 days (the policy weighs them as {value:.1f}: "
                     f"recent contacts count more)")
        rows.append((name, layout.labels.get(name, name), words, float(obs[i])))
    return rows


def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    return render(request, "customers/customer_detail.html", {
        "customer": customer,
        "consents": selectors.customer_current_consent(customer=customer),
        "consent_history": customer.consents.order_by("-recorded_at", "-id"),
        "timeline": _timeline(customer, TIMELINE_ITEMS),
        "counts": {"events": customer.events.count(), "decisions": customer.decisions.count()},
        "features": _features(customer),
    })
