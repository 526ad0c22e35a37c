"""Serving set-ups are reused per process until a config edit anywhere marks them stale."""

from __future__ import annotations

import pytest

from crm_console import change_markers
from crm_console.campaigns.services import action_update, campaign_update
from crm_console.decisioning import serving
from crm_console.decisioning.batching import decision_create
from crm_console.decisioning.services import DecisionError, campaign_for_decisions
from tests.console.api.helpers import customer_with_consent, live_campaign

pytestmark = pytest.mark.django_db


def test_unchanged_campaign_setup_is_served_without_a_database_query(django_assert_num_queries):
    campaign = live_campaign()
    serving.serving_for_campaign_id(campaign.pk)
    with django_assert_num_queries(0):
        assert serving.serving_for_campaign_id(campaign.pk).campaign.pk == campaign.pk


def test_campaign_paused_after_a_decision_refuses_the_next_one():
    campaign = live_campaign()
    customer_with_consent("c1")
    decision_create(campaign=campaign_for_decisions(campaign_id=campaign.pk),
                    customer_external_id="c1", explain=False)
    campaign_update(campaign=campaign, status="paused")
    with pytest.raises(DecisionError, match="paused"):
        campaign_for_decisions(campaign_id=campaign.pk)


def test_action_disabled_after_a_decision_is_masked_from_the_next_one():
    campaign = live_campaign(caps={"email": (50, 7), "sms": (50, 7)}, overall=(50, 7))
    customer_with_consent("c1")
    decision_create(campaign=campaign, customer_external_id="c1", explain=False)
    for action in campaign.actions.exclude(channel="none"):
        action_update(action=action, enabled=False)
    decision = decision_create(campaign=campaign_for_decisions(campaign_id=campaign.pk),
                               customer_external_id="c1", explain=False).decision
    assert decision.action.is_no_contact
    assert decision.action_mask == [True] + [False] * (len(decision.action_mask) - 1)


def test_edit_made_by_another_process_is_picked_up_once_the_shared_marker_changes():
    campaign = live_campaign()
    serving.serving_for_campaign_id(campaign.pk)
    type(campaign).objects.filter(pk=campaign.pk).update(status="paused")  # no signal here
    assert serving.serving_for_campaign_id(campaign.pk).campaign.status == "live"
    serving.serving_changed()  # what that process's save did
    assert serving.serving_for_campaign_id(campaign.pk).campaign.status == "paused"


def test_other_process_edit_reaches_this_process_within_the_marker_check_interval(monkeypatch):
    from django.core.cache import cache

    campaign = live_campaign()
    clock = [1000.0]
    monkeypatch.setattr(change_markers.time, "monotonic", lambda: clock[0])
    serving.serving_changed()
    serving.serving_for_campaign_id(campaign.pk)
    type(campaign).objects.filter(pk=campaign.pk).update(status="paused")
    cache.set(serving.SERVING_CHANGED.key, "set by another process")  # its signal did this
    clock[0] += serving.SERVING_CHANGED.check_seconds / 2
    assert serving.serving_for_campaign_id(campaign.pk).campaign.status == "live"
    clock[0] += serving.SERVING_CHANGED.check_seconds
    assert serving.serving_for_campaign_id(campaign.pk).campaign.status == "paused"


def test_unknown_campaign_has_no_setup():
    assert serving.serving_for_campaign_id(987654) is None
    with pytest.raises(DecisionError, match="Unknown campaign"):
        campaign_for_decisions(campaign_id=987654)


def test_warm_up_builds_the_live_explainer_before_the_first_request(monkeypatch):
    from agents.explain import Explainer

    campaign = live_campaign(holdout_share="0.5")
    customer_with_consent("c1")
    serving.clear_caches()
    assert serving.serving_warm_up() == [campaign.pk]

    def no_building(*args, **kwargs):
        raise AssertionError("the request built an explainer")

    monkeypatch.setattr(Explainer, "__init__", no_building)
    outcome = decision_create(campaign=campaign_for_decisions(campaign_id=campaign.pk),
                              customer_external_id="c1")
    assert outcome.explanation is not None


def test_warm_up_skips_a_campaign_it_cannot_serve_and_warms_the_others():
    broken = live_campaign(name="Broken")
    broken.policy_versions.update(artifact_sha256="0" * 64)  # no longer matches its bytes
    working = live_campaign(name="Working")
    serving.clear_caches()
    assert serving.serving_warm_up() == [working.pk]


def test_gunicorn_worker_warms_up_on_start():
    import runpy
    from pathlib import Path

    class Log:
        def __init__(self):
            self.lines = []

        def info(self, message, *args):
            self.lines.append(message % args)

        def exception(self, message, *args):
            self.lines.append("ERROR " + message % args)

    class Worker:
        log = Log()

    campaign = live_campaign()
    serving.clear_caches()
    config = runpy.run_path(str(Path(__file__).resolve().parents[3] / "gunicorn.conf.py"))
    config["post_worker_init"](Worker())
    assert Worker.log.lines == [f"serving warmed up for campaigns [{campaign.pk}]"]


def test_gunicorn_worker_loads_the_urlconf_before_its_first_request():
    import runpy
    from pathlib import Path

    from django.urls import clear_url_caches, get_resolver

    class Worker:
        class log:
            info = exception = staticmethod(lambda *args: None)

    clear_url_caches()
    config = runpy.run_path(str(Path(__file__).resolve().parents[3] / "gunicorn.conf.py"))
    config["post_worker_init"](Worker())
    assert get_resolver()._populated  # the first request neither imports views nor compiles URLs
