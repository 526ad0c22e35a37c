"""A tiny demo workspace (real logged decisions from the simulator) and fast training settings."""

from __future__ import annotations

import pytest

from crm_console.campaigns.models import Campaign
from crm_console.demo_workspace import demo_workspace_seed
from crm_console.training import agents_training, services


@pytest.fixture(autouse=True)
def fast_training(monkeypatch, tmp_path, settings):
    """Small simulator cohorts and a short warm start: the behaviour, not the policy quality."""
    settings.POLICY_CHECKPOINT_DIR = tmp_path / "checkpoints"
    monkeypatch.setattr(agents_training, "EVALUATION_CUSTOMERS", 40)
    monkeypatch.setattr(agents_training, "EVALUATION_DAYS", 10)
    monkeypatch.setattr(agents_training, "WARM_START_Q_STEPS", 100)
    monkeypatch.setattr(services, "PROGRESS_SAVE_SECONDS", 0.0)


@pytest.fixture
def demo_campaign(db) -> Campaign:
    """40 customers, 21 days of rule-based history (epsilon 0.1), attributed; v1 live = the rules."""
    demo_workspace_seed(seed=0, customers=40, days=21)
    return Campaign.objects.get()


@pytest.fixture
def demo_users(demo_campaign) -> dict:
    """The demo's marketer, reviewer and admin (one per role)."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(username__in=["marketer", "reviewer", "admin"])
    return {user.username: user for user in users}


@pytest.fixture
def logged_campaign(db) -> Campaign:
    """A demo campaign with enough logged history to fit a customer-response model on (about
    5,000 priced decisions)."""
    demo_workspace_seed(seed=3, customers=400, days=49)
    return Campaign.objects.get()
