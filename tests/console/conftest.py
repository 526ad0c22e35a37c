"""Console page fixtures: a tiny demo workspace with real simulator-logged decisions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from crm_console.campaigns.models import Campaign
from crm_console.demo_workspace import demo_workspace_seed


@pytest.fixture
def small_demo(db) -> Campaign:
    """40 customers, 21 days of rule-based history, attributed; users marketer/reviewer/admin."""
    demo_workspace_seed(seed=0, customers=40, days=21)
    return Campaign.objects.get()


@pytest.fixture
def demo_login(client):
    """Log the test client in as one of the demo users: demo_login("reviewer")."""
    def login(username: str):
        client.force_login(get_user_model().objects.get(username=username))
        return client
    return login


@pytest.fixture
def task_queue_down(monkeypatch):
    """Queuing a group of tasks raises what kombu raises once its connection retries are spent."""
    from celery import canvas
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")

    monkeypatch.setattr(canvas.group, "apply_async", broker_down)
    return monkeypatch
