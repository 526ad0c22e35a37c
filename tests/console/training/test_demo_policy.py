"""`make run`'s first policy: trained on the demo, evaluated, promoted only through the guardrail."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from crm_console.compliance.models import AuditEntry
from crm_console.decisioning.models import PolicyVersion
from crm_console.demo_workspace import demo_policy_train

pytestmark = pytest.mark.django_db


def test_demo_policy_is_trained_evaluated_and_guarded_once(demo_campaign):
    summary = demo_policy_train(budget_steps=2_000)

    version = PolicyVersion.objects.get(pk=summary.policy_version_id)
    assert summary.trained and version.ope_report["estimates"]
    live = PolicyVersion.objects.get(status="live")
    if summary.promoted:
        assert live.pk == version.pk and not version.forced_promotion
    else:  # refused: the rules stay live and the refusal is on record
        assert live.pk != version.pk
        assert AuditEntry.objects.filter(verb="policy_version.promotion_refused",
                                         target_id=str(version.pk)).exists()
        assert summary.reason

    again = demo_policy_train(budget_steps=2_000)
    assert not again.trained and again.policy_version_id == version.pk
    assert PolicyVersion.objects.count() == 2


def test_train_demo_policy_command_needs_the_demo_workspace(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="seed_demo"):
        call_command("train_demo_policy")


def test_demo_force_reason_promotes_a_refused_candidate_as_a_recorded_forced_promotion(
        demo_campaign, monkeypatch):
    from crm_console.decisioning import promotion

    monkeypatch.setattr(promotion, "guardrail_check", lambda **kw: promotion.GuardrailResult(
        False, "the lower bound is not above 0"))
    summary = demo_policy_train(budget_steps=2_000, force_reason="demo: show an RL policy live")

    version = PolicyVersion.objects.get(pk=summary.policy_version_id)
    assert summary.promoted and version.status == "live" and version.forced_promotion
    assert version.promoted_by.username == "admin"
    assert version.promotion_reason == "demo: show an RL policy live"
