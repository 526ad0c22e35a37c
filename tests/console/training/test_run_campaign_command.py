"""`manage.py run_campaign`: today's batch, explained, once a day when asked."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from crm_console.decisioning.models import Decision, Explanation

pytestmark = pytest.mark.django_db


def test_run_campaign_decides_and_explains_every_active_customer(demo_campaign, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("run_campaign", "--explain")
    batch = Decision.objects.filter(context__source="batch campaign run")
    assert batch.exists()
    assert Explanation.objects.filter(decision__in=batch).count() == batch.count()
    assert all(decision.action_mask[decision.action_index] for decision in batch)


def test_run_campaign_once_per_day_does_not_run_twice(demo_campaign, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("run_campaign", "--once-per-day")
    first = Decision.objects.count()
    call_command("run_campaign", "--once-per-day")
    assert Decision.objects.count() == first
    assert "already ran today" in capsys.readouterr().out


def test_run_campaign_lists_failed_chunks_and_resume_reruns_them(
        demo_campaign, settings, tmp_path, capsys, monkeypatch):
    from crm_console.decisioning.adapters import FileAdapter
    from crm_console.decisioning.models import BatchRun

    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(FileAdapter, "deliver", lambda self, d: (_ for _ in ()).throw(
        ConnectionError("adapter down")))
    call_command("run_campaign", "--chunk", "15")
    out = capsys.readouterr().out
    run = BatchRun.objects.get()
    assert "finished with errors" in out and f"--resume {run.pk}" in out
    monkeypatch.undo()

    call_command("run_campaign", "--resume", str(run.pk))
    assert "finished:" in capsys.readouterr().out
    run.refresh_from_db()
    assert run.status == BatchRun.Status.FINISHED
