"""train_policy / evaluate_policy / promote_policy management commands."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from crm_console.decisioning.models import PolicyVersion
from crm_console.training.models import TrainingRun

pytestmark = pytest.mark.django_db


def test_train_evaluate_and_refused_promotion_from_the_command_line(demo_campaign, capsys):
    call_command("train_policy", "--budget", "2000", "--no-warm-start")
    out = capsys.readouterr().out
    run = TrainingRun.objects.get()
    assert run.status == "succeeded" and "Candidate v2" in out
    assert "Off-policy evaluation" in out

    call_command("evaluate_policy", "--policy-version", str(run.policy_version_id))
    assert "| candidate | dr |" in capsys.readouterr().out

    version = PolicyVersion.objects.get(pk=run.policy_version_id)
    if not version.ope_report["guardrail"]["passed"]:
        with pytest.raises(CommandError, match="Refused by the guardrail"):
            call_command("promote_policy", "--policy-version", str(version.pk))
    with pytest.raises(CommandError, match="reason"):
        call_command("promote_policy", "--policy-version", str(version.pk), "--user", "admin", "--force")
    call_command("promote_policy", "--policy-version", str(version.pk), "--user", "admin", "--force",
                 "--reason", "demo")
    assert PolicyVersion.objects.get(status="live").pk == version.pk


def test_train_policy_with_a_population_keeps_one_members_policy(demo_campaign, capsys):
    call_command("train_policy", "--budget", "2000", "--no-warm-start", "--no-evaluate",
                 "--population", "2")

    run = TrainingRun.objects.get(population_of__isnull=True)
    assert run.status == "succeeded", run.error
    assert run.report["kept_member"] in set(run.members.values_list("pk", flat=True))
    assert "x 2 policies" in capsys.readouterr().out


def test_train_policy_refuses_a_bad_population_size_and_writes_nothing(demo_campaign):
    with pytest.raises(CommandError, match="population_size"):
        call_command("train_policy", "--budget", "2000", "--population", "0")

    assert not TrainingRun.objects.exists()
