"""Batch campaign runs: decide a segment in chunks through the live decision service, deliver."""

from __future__ import annotations

import json

import pytest

from crm_console.decisioning.models import Decision
from crm_console.decisioning.tasks import run_campaign

pytestmark = pytest.mark.django_db


def test_run_campaign_decides_every_customer_in_chunks_and_hands_them_to_the_adapter(
        demo_campaign, tmp_path):
    before = Decision.objects.count()
    path = tmp_path / "out.jsonl"
    result = run_campaign.delay(demo_campaign.pk, segment=None, chunk_size=15,
                                adapter={"kind": "file", "path": str(path)}).get()

    customers = result["customers"]
    assert result["chunks"] == -(-customers // 15)
    assert result["decisions"] == customers == Decision.objects.count() - before
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == customers == result["delivered"]
    new = Decision.objects.filter(context__source="batch campaign run")
    assert new.count() == customers
    assert {line["decision_id"] for line in lines} == set(new.values_list("pk", flat=True))


def test_run_campaign_segment_filter_limits_the_customers(demo_campaign, tmp_path):
    result = run_campaign.delay(demo_campaign.pk, segment={"external_ids": ["cust-00001", "cust-00002"]},
                                adapter={"kind": "file", "path": str(tmp_path / "o.jsonl")}).get()
    assert result["customers"] <= 2
    assert result["decisions"] == result["customers"]


def test_undelivered_decisions_are_released(demo_campaign):
    result = run_campaign.delay(demo_campaign.pk, chunk_size=100, adapter={
        "kind": "webhook", "url": "http://127.0.0.1:9/down", "secret": "s", "timeout": 1}).get()
    assert result["failed"] == result["decisions"] > 0
    released = Decision.objects.filter(status=Decision.Status.RELEASED).count()
    assert released == result["released"] == result["contacts"]
