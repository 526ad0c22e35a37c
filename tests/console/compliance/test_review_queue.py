"""The review queue: riskiest decisions first, filters by risk, and a verdict that keeps the
reviewer in place (a refused flag stays on the decision; a saved one returns to the queue)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm_console.campaigns.models import Action, Offer
from crm_console.compliance.models import DecisionReview
from crm_console.compliance.selectors import REVIEW_RISKS, review_queue, review_risks
from tests.factories import CampaignFactory, DecisionFactory, PolicyVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def risky(db):
    """One plain decision and one per risk, the plain one newest (so only risk can order them)."""
    campaign = CampaignFactory()
    now = timezone.now()
    old = now - timedelta(hours=1)
    gift, _ = Offer.objects.update_or_create(
        key="big_discount", defaults={"label": "30 % off", "kind": Offer.Kind.PERCENT_OFF,
                                      "value": Decimal("30")})
    discount = Action.objects.create(campaign=campaign, channel="email", offer=gift.key,
                                     send_window="morning", cost=Decimal("0.02"))
    forced = PolicyVersionFactory(campaign=campaign, status="live", forced_promotion=True)
    return {
        "plain": DecisionFactory(campaign=campaign, decided_at=now),
        "incentive": DecisionFactory(campaign=campaign, action=discount, decided_at=old),
        "near_caps": DecisionFactory(campaign=campaign, decided_at=old,
                                     mask_reasons={"CHANNEL_CAP": [1]}),
        "low_propensity": DecisionFactory(campaign=campaign, decided_at=old, propensity=0.01),
        "complaint": DecisionFactory(campaign=campaign, decided_at=old,
                                     reward_components={"unsubscribe": 1.0}),
        "forced": DecisionFactory(campaign=campaign, decided_at=old, policy_version=forced),
    }


def test_queue_puts_the_riskiest_decisions_first_and_plain_ones_last(risky):
    order = [d.pk for d in review_queue()]
    by_weight = sorted(REVIEW_RISKS, key=lambda key: -REVIEW_RISKS[key][1])
    assert order == [risky[key].pk for key in (*by_weight, "plain")]


def test_each_row_says_why_it_comes_first_in_words(risky):
    rows = {d.pk: d for d in review_queue()}
    assert review_risks(rows[risky["forced"].pk]) == [REVIEW_RISKS["forced"][0]]
    assert review_risks(rows[risky["plain"].pk]) == []


@pytest.mark.parametrize("risk", list(REVIEW_RISKS))
def test_queue_filters_to_one_risk(reviewer_client, risky, risk):
    shown = [d.pk for d in reviewer_client.get(f"/compliance/reviews/?risk={risk}").context["page"]]
    assert shown == [risky[risk].pk]


def test_queue_page_shows_the_reasons_and_can_still_list_newest_first(reviewer_client, risky):
    response = reviewer_client.get("/compliance/reviews/")
    html = response.content.decode()
    assert REVIEW_RISKS["forced"][0] in html and "nothing stands out" in html
    newest = reviewer_client.get("/compliance/reviews/?order=newest").context["page"]
    assert newest[0].pk == risky["plain"].pk


@pytest.mark.parametrize("query", ["risk=bogus", "order=sideways", "sample_size=abc"])
def test_bad_queue_filters_say_so_at_the_top_and_show_the_default_queue(reviewer_client, risky,
                                                                         query):
    response = reviewer_client.get(f"/compliance/reviews/?{query}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-error-summary" in html and "There is a problem" in html
    assert len(response.context["page"]) == len(risky)


def test_flag_without_a_note_keeps_the_decision_on_screen_with_the_field_error(reviewer_client):
    decision = DecisionFactory()
    queue = "/compliance/reviews/?page=2&state=unreviewed"
    response = reviewer_client.post(f"/compliance/reviews/{decision.pk}/",
                                    {"verdict": "flagged", "note": "", "next": queue})
    assert response.status_code == 200
    assert "decisioning/decision_detail.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert 'id="id_note_errors"' in html and "Say what is wrong" in html
    assert 'aria-describedby="id_note_helptext id_note_errors"' in html
    assert f'name="next" value="{queue}"'.replace("&", "&amp;") in html  # still returns there
    assert not DecisionReview.objects.exists()


def test_a_verdict_returns_to_the_queue_at_the_same_place(reviewer_client):
    decision = DecisionFactory()
    queue = "/compliance/reviews/?risk=&order=risk&page=3"
    page = reviewer_client.get(f"/decisions/{decision.pk}/", {"next": queue}).content.decode()
    assert f'name="next" value="{queue}"'.replace("&", "&amp;") in page
    response = reviewer_client.post(f"/compliance/reviews/{decision.pk}/",
                                    {"verdict": "flagged", "note": "too generous", "next": queue})
    assert response.status_code == 302 and response["Location"] == queue


def test_a_foreign_next_on_the_decision_page_is_ignored(reviewer_client):
    decision = DecisionFactory()
    page = reviewer_client.get(f"/decisions/{decision.pk}/",
                               {"next": "https://evil.example/"}).content.decode()
    assert "evil.example" not in page


def test_queue_links_carry_the_queue_address_to_the_decision(reviewer_client, risky):
    html = reviewer_client.get("/compliance/reviews/?page=1").content.decode()
    assert f"/decisions/{risky['plain'].pk}/?next=/compliance/reviews/%3Fpage%3D1#reviews" in html
