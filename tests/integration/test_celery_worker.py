"""A task makes a round trip through Redis and a real worker."""

from __future__ import annotations

import pytest

from crm_console.celery import ping
from tests.conftest import needs_real_stack

pytestmark = [needs_real_stack, pytest.mark.integration, pytest.mark.worker]


def test_task_round_trip_through_real_worker(celery_worker_real):
    result = ping.apply_async(args=[41], queue="default")
    assert result.get(timeout=30) == 42
    assert result.state == "SUCCESS"
