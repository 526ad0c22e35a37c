"""Batch run pages: every role reads a run's progress and figures; marketers and admins start
and resume runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from crm_console.campaigns.models import Campaign
from crm_console.compliance.models import AuditEntry
from crm_console.decisioning import services as decision_services
from crm_console.decisioning.adapters import FileAdapter
from crm_console.decisioning.batch_runs import batch_run_start
from crm_console.decisioning.forms import CHUNK_SIZE_MAX, CHUNK_SIZE_MIN, traits_parse
from crm_console.decisioning.models import BatchRun
from crm_console.decisioning.serving import serving_changed

pytestmark = pytest.mark.django_db


def finished_run(campaign, tmp_path, **kwargs) -> BatchRun:
    run, _ = batch_run_start(campaign=campaign, chunk_size=15,
                             adapter_spec={"kind": "file", "path": str(tmp_path / "o.jsonl")},
                             **kwargs)
    return run


def test_a_reviewer_reads_a_finished_run_with_its_figures(small_demo, demo_login, tmp_path):
    run = finished_run(small_demo, tmp_path)
    page = demo_login("reviewer").get(f"/decisions/batch-runs/{run.pk}/")
    assert page.status_code == 200
    assert b"batch-run-figures" in page.content and b"Finished" in page.content
    assert b"Resume" not in page.content


def test_the_list_shows_every_run(small_demo, demo_login, tmp_path):
    run = finished_run(small_demo, tmp_path)
    page = demo_login("reviewer").get("/decisions/batch-runs/")
    assert page.status_code == 200 and f"#{run.pk}".encode() in page.content


def test_a_run_matching_nobody_says_so(small_demo, demo_login, tmp_path):
    run = finished_run(small_demo, tmp_path, segment={"time_zone": "Nowhere/Nobody"})
    page = demo_login("marketer").get(f"/decisions/batch-runs/{run.pk}/")
    assert b"The segment matched no customer" in page.content


def test_a_marketer_resumes_the_failed_chunks(small_demo, demo_login, tmp_path, monkeypatch):
    monkeypatch.setattr(FileAdapter, "deliver", lambda self, d: (_ for _ in ()).throw(
        ConnectionError("adapter down")))
    run = finished_run(small_demo, tmp_path)
    page = demo_login("marketer").get(f"/decisions/batch-runs/{run.pk}/")
    assert b"failed-chunks" in page.content and b"Resume the failed chunks" in page.content
    monkeypatch.undo()
    response = demo_login("marketer").post(f"/decisions/batch-runs/{run.pk}/resume/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == BatchRun.Status.FINISHED


def test_a_reviewer_may_not_resume(small_demo, demo_login, tmp_path):
    run = finished_run(small_demo, tmp_path)
    response = demo_login("reviewer").post(f"/decisions/batch-runs/{run.pk}/resume/")
    assert response.status_code == 403


def test_an_anonymous_visitor_is_sent_to_log_in(small_demo, client, tmp_path):
    run = finished_run(small_demo, tmp_path)
    assert client.get(f"/decisions/batch-runs/{run.pk}/").status_code == 302


# ------------------------------------------------------------------------------ start from the console
START_URL = "/decisions/batch-runs/start/"


@pytest.fixture
def workspace_adapter(settings, tmp_path) -> Path:
    """The workspace's configured adapter (settings.DECISION_ADAPTER): a file under tmp_path."""
    path = tmp_path / "workspace.jsonl"
    settings.DECISION_ADAPTER = {"kind": "file", "path": str(path)}
    return path


def start_form(campaign, **changes) -> dict:
    """A valid start of `campaign` (every customer but the churned, 10 a chunk, once per day)."""
    form = {"campaign": campaign.pk, "traits": "", "time_zone": "", "leave_out_churned": "on",
            "chunk_size": "10", "once_per_day": "on"}
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def refused(response, field: str, message: str) -> None:
    """The form came back with `message` on `field` and nothing was written."""
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(message in error for error in errors.get(field, [])), errors
    assert BatchRun.objects.count() == 0


def test_a_marketer_starts_a_batch_run_and_lands_on_its_page(
        small_demo, demo_login, workspace_adapter):
    response = demo_login("marketer").post(START_URL, start_form(small_demo))
    run = BatchRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/decisions/batch-runs/{run.pk}/"
    assert run.started_by.username == "marketer" and run.chunk_size == 10 and run.once_per_day


def test_a_started_run_says_so_on_its_page(small_demo, demo_login, workspace_adapter):
    page = demo_login("marketer").post(START_URL, start_form(small_demo), follow=True)
    run = BatchRun.objects.get()
    assert f"Batch run #{run.pk} started".encode() in page.content


def test_a_start_while_the_task_queue_is_down_says_nothing_was_decided_and_offers_resume(
        small_demo, demo_login, workspace_adapter, task_queue_down):
    page = demo_login("marketer").post(START_URL, start_form(small_demo), follow=True)
    run = BatchRun.objects.get()
    assert page.status_code == 200
    assert f"Batch run #{run.pk} is saved but nothing was decided".encode() in page.content
    assert b"task queue could not be reached" in page.content
    assert reverse("decisioning:batch-run-resume", args=[run.pk]).encode() in page.content


def test_a_started_run_hands_its_decisions_to_the_workspace_adapter(
        small_demo, demo_login, workspace_adapter):
    demo_login("marketer").post(START_URL, start_form(small_demo))
    run = BatchRun.objects.get()
    assert run.status == BatchRun.Status.FINISHED, run.errors
    assert len(workspace_adapter.read_text().splitlines()) == run.totals["decisions"] > 0


def test_a_start_from_the_console_is_on_the_audit_trail_under_its_marketer(
        small_demo, demo_login, workspace_adapter):
    demo_login("marketer").post(START_URL, start_form(small_demo))
    entry = AuditEntry.objects.get(verb="campaign.batch_run_started")
    assert entry.actor.username == "marketer"
    assert entry.details["batch_run"] == BatchRun.objects.get().pk


def test_the_segment_is_stored_as_run_campaign_reads_it(small_demo, demo_login, workspace_adapter):
    demo_login("marketer").post(START_URL, start_form(
        small_demo, traits="plan = retail", time_zone="", leave_out_churned=None))
    assert BatchRun.objects.get().segment == {"exclude_churned": False,
                                              "traits": {"plan": "retail"}}


def test_a_second_start_the_same_day_joins_todays_run_and_says_so(
        small_demo, demo_login, workspace_adapter):
    client = demo_login("marketer")
    client.post(START_URL, start_form(small_demo))
    first = BatchRun.objects.get()
    page = client.post(START_URL, start_form(small_demo, chunk_size="20"), follow=True)
    assert BatchRun.objects.count() == 1
    assert page.redirect_chain[-1][0] == f"/decisions/batch-runs/{first.pk}/"
    assert b"already had a batch run today" in page.content


def test_without_once_per_day_a_second_start_makes_a_second_run(
        small_demo, demo_login, workspace_adapter):
    client = demo_login("marketer")
    client.post(START_URL, start_form(small_demo))
    client.post(START_URL, start_form(small_demo, once_per_day=None))
    assert BatchRun.objects.count() == 2


def test_the_form_offers_only_live_campaigns(small_demo, demo_login):
    Campaign.objects.create(name="Spring draft")
    page = demo_login("marketer").get(START_URL)
    assert page.status_code == 200
    assert small_demo.name.encode() in page.content and b"Spring draft" not in page.content


def test_the_campaign_page_links_to_the_start_form_with_the_campaign_chosen(
        small_demo, demo_login):
    page = demo_login("marketer").get(f"/campaigns/{small_demo.pk}/")
    assert f"{START_URL}?campaign={small_demo.pk}".encode() in page.content


def test_a_draft_campaign_is_refused(small_demo, demo_login):
    draft = Campaign.objects.create(name="Spring draft")
    refused(demo_login("marketer").post(START_URL, start_form(draft)),
            "campaign", "Choose a live campaign")


def test_a_campaign_paused_while_the_form_was_sent_is_refused(small_demo, demo_login, monkeypatch):
    ready = decision_services.campaign_for_decisions

    def paused_first(*, campaign_id: int):
        Campaign.objects.filter(pk=campaign_id).update(status=Campaign.Status.PAUSED)
        serving_changed()
        return ready(campaign_id=campaign_id)

    monkeypatch.setattr(decision_services, "campaign_for_decisions", paused_first)
    refused(demo_login("marketer").post(START_URL, start_form(small_demo)),
            "campaign", "only live campaigns make decisions")


def test_a_chunk_below_the_smallest_size_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(small_demo, chunk_size="9")),
            "chunk_size", f"at least {CHUNK_SIZE_MIN}")


def test_a_chunk_above_the_largest_size_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(
        small_demo, chunk_size=str(CHUNK_SIZE_MAX + 1))), "chunk_size", "at most 10,000")


def test_a_chunk_size_that_is_not_a_whole_number_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(small_demo, chunk_size="ten")),
            "chunk_size", "whole number")


def test_a_missing_chunk_size_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(small_demo, chunk_size=None)),
            "chunk_size", "how many customers")


def test_a_trait_line_without_a_value_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(small_demo, traits="plan")),
            "traits", "Line 1: write one trait a line as name = value")


def test_a_trait_name_that_is_a_database_lookup_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(
        small_demo, traits="plan__contains = re")), "traits", "is not a trait name")


def test_a_trait_given_twice_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(
        small_demo, traits="plan = retail\n\nplan = pro")), "traits", "Line 3: plan is given twice")


def test_an_unknown_time_zone_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(small_demo, time_zone="Mars/Base")),
            "time_zone", "is not a time zone name")


def test_a_segment_matching_nobody_is_refused(small_demo, demo_login):
    refused(demo_login("marketer").post(START_URL, start_form(small_demo, traits="plan = none")),
            "__all__", "No customer matches this segment")


def test_trait_values_read_as_json_where_they_can():
    assert traits_parse("churned = true\nage = 42\nplan = retail") == {
        "churned": True, "age": 42, "plan": "retail"}


def test_a_reviewer_may_not_start_a_run(small_demo, demo_login):
    client = demo_login("reviewer")
    assert client.get(START_URL).status_code == 403
    assert client.post(START_URL, start_form(small_demo)).status_code == 403
    assert BatchRun.objects.count() == 0


def test_a_reviewer_sees_no_start_button(small_demo, demo_login):
    client = demo_login("reviewer")
    assert START_URL.encode() not in client.get("/decisions/batch-runs/").content
    assert START_URL.encode() not in client.get(f"/campaigns/{small_demo.pk}/").content


def test_a_marketer_sees_the_start_button_on_the_list(small_demo, demo_login):
    assert START_URL.encode() in demo_login("marketer").get("/decisions/batch-runs/").content


def test_an_anonymous_visitor_is_sent_to_log_in_to_start_a_run(small_demo, client):
    response = client.get(START_URL)
    assert response.status_code == 302 and "login" in response["Location"]
