"""Training runs are read-only in the admin: the console's services queue, cancel and audit them."""

from __future__ import annotations

import pytest

from crm_console.training.models import TrainingRun
from tests.console.admin_helpers import admin_url
from tests.factories import TrainingRunFactory

pytestmark = pytest.mark.django_db


def test_admin_cannot_add_a_training_run(admin_client_role):
    assert admin_client_role.get(admin_url(TrainingRun, "add")).status_code == 403


def test_admin_cannot_change_a_training_run(admin_client_role):
    run = TrainingRunFactory(budget_steps=2_000)
    assert admin_client_role.post(admin_url(run, "change"), {"budget_steps": 9}).status_code == 403
    run.refresh_from_db()
    assert run.budget_steps == 2_000
