"""Every form's help and errors are read out: each aria-describedby id exists on the page, and a
failed submit puts an error summary (linking to the fields) at the top of the form."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from crm_console.form_rendering import ConsoleBoundField
from tests.factories import (
    ChannelCapFactory, CustomerFactory, DecisionFactory, PolicyVersionFactory, TrainingRunFactory,
)

pytestmark = pytest.mark.django_db


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.described_by: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for target in (attrs.get("aria-describedby") or "").split():
            self.described_by.append((attrs.get("name") or attrs.get("id") or tag, target))


def dangling_described_by(html: str) -> list[tuple[str, str]]:
    """(element, id) for every aria-describedby id that no element on the page carries."""
    parser = _Ids()
    parser.feed(html)
    return [(element, target) for element, target in parser.described_by
            if target not in parser.ids]


@pytest.fixture
def pages(db):
    decision = DecisionFactory(customer=CustomerFactory())
    campaign, policy = decision.campaign, decision.campaign.contact_policy
    ChannelCapFactory(contact_policy=policy)  # a cap row with help texts in the table
    version = PolicyVersionFactory(campaign=campaign)
    run = TrainingRunFactory(campaign=campaign)
    return {"campaign": campaign, "policy": policy, "version": version, "run": run,
            "decision": decision}


def _form_pages(p) -> list[str]:
    c, policy = p["campaign"].pk, p["policy"].pk
    return [
        "/campaigns/new/", f"/campaigns/{c}/edit/", f"/campaigns/{c}/catalogue/",
        f"/campaigns/{c}/reward-weights/", "/campaigns/import/", "/campaigns/channels/new/",
        "/campaigns/offers/new/", "/campaigns/send-windows/new/",
        f"/campaigns/contact-policies/{policy}/edit/",
        f"/campaigns/contact-policies/{policy}/suppressions/", "/training/",
        f"/training/policies/{p['version'].pk}/", f"/decisions/{p['decision'].pk}/", "/decisions/",
        "/customers/", "/compliance/reviews/", "/compliance/audit/", "/compliance/subject-requests/",
        f"/compliance/subject-requests/{p['decision'].customer_id}/erase/",
        "/decisions/batch-runs/start/",
    ]


def test_every_described_by_id_on_every_form_page_exists(admin_client_role, pages):
    for url in _form_pages(pages):
        response = admin_client_role.get(url)
        assert response.status_code == 200, url
        assert dangling_described_by(response.content.decode()) == [], url


def _failed_posts(p) -> list[tuple[str, dict]]:
    c, policy = p["campaign"], p["policy"]
    return [
        (f"/campaigns/{c.pk}/edit/", {"name": "", "holdout_share": "2"}),
        (f"/campaigns/{c.pk}/reward-weights/", {"open": "x"}),
        ("/campaigns/channels/new/", {"key": "Bad Key!", "label": ""}),
        ("/campaigns/offers/new/", {"key": "", "value": "-1"}),
        (f"/campaigns/contact-policies/{policy.pk}/edit/", {
            "name": policy.name, "overall_max_contacts": 3, "overall_window_days": 7,
            "min_gap_hours": "-5", "quiet_hours_start": 22, "quiet_hours_end": 7,
            "caps-TOTAL_FORMS": 2, "caps-INITIAL_FORMS": 0,
            "caps-0-channel": "sms", "caps-0-max_contacts": 1, "caps-0-window_days": 7,
            "caps-0-min_gap_hours": 0, "caps-1-channel": "sms", "caps-1-max_contacts": 2,
            "caps-1-window_days": 7, "caps-1-min_gap_hours": 0}),
        ("/training/start/", {"campaign": c.pk, "algorithm": "actor_critic", "budget_steps": "-1",
                              "seed": 0}),
        (f"/training/policies/{p['version'].pk}/promote/", {"force": "on", "reason": ""}),
        (f"/compliance/reviews/{p['decision'].pk}/", {"verdict": "flagged", "note": ""}),
        (f"/compliance/subject-requests/{p['decision'].customer_id}/erase/",
         {"confirm": "erase", "reason": ""}),
        ("/decisions/batch-runs/start/", {"campaign": c.pk, "chunk_size": "1",
                                          "traits": "plan"}),
    ]


def test_a_failed_submit_shows_an_error_summary_and_every_described_by_id_exists(
        admin_client_role, pages):
    for url, data in _failed_posts(pages):
        response = admin_client_role.post(url, data)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert html.count("data-error-summary") == 1, url
        assert '<div class="error-summary" role="alert" tabindex="-1" data-error-summary' in html, url
        assert dangling_described_by(html) == [], url


def test_the_error_summary_links_each_error_to_its_field(admin_client_role, pages):
    policy = pages["policy"]
    data = dict(_failed_posts(pages))[f"/campaigns/contact-policies/{policy.pk}/edit/"]
    html = admin_client_role.post(f"/campaigns/contact-policies/{policy.pk}/edit/", data) \
        .content.decode()
    summary = html.split("data-error-summary")[1].split("</div>")[0]
    assert 'href="#id_min_gap_hours"' in summary
    # the duplicate channel is said in the summary and inside the caps table, not beside it
    table = html.split('class="caps-table"')[1].split("</table>")[0]
    assert "row-error" in table and "duplicate" in table.lower()
    assert 'aria-describedby="id_min_gap_hours_helptext id_min_gap_hours_errors"' in html \
        or 'aria-describedby="id_min_gap_hours_errors"' in html


def test_login_form_error_gets_a_summary(client, db):
    response = client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})
    html = response.content.decode()
    assert "data-error-summary" in html and dangling_described_by(html) == []


def test_the_bound_field_points_at_the_help_and_error_ids_the_templates_render():
    from django import forms

    class Form(forms.Form):
        name = forms.CharField(help_text="Your name.")
        plain = forms.CharField()
        own = forms.CharField(help_text="h", widget=forms.TextInput(
            attrs={"aria-describedby": "elsewhere"}))

    form = Form(data={})
    form.is_valid()
    assert isinstance(form["name"], ConsoleBoundField)
    assert form["name"].aria_describedby == "id_name_helptext id_name_errors"
    assert form["plain"].aria_describedby == "id_plain_errors"
    assert 'aria-describedby="elsewhere"' in str(form["own"])
    assert 'id="id_name_errors"' in str(form["name"].errors)  # Django's own error list too
