"""Batch run pages: every role reads a run's progress and figures; marketers and admins resume."""

from __future__ import annotations

import pytest

from crm_console.decisioning.adapters import FileAdapter
from crm_console.decisioning.batch_runs import batch_run_start
from crm_console.decisioning.models import BatchRun

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
