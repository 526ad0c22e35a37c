"""Training pages: start (form), live progress fragment, cancel; policy versions and promotion."""

from __future__ import annotations

import pytest

from crm_console.decisioning.models import PolicyVersion
from crm_console.training.models import TrainingRun
from tests.factories import (
    ActionFactory, CampaignFactory, PolicyVersionFactory, TrainingRunFactory,
)

pytestmark = pytest.mark.django_db


def start(client, campaign, **overrides):
    return client.post("/training/start/", {"campaign": campaign.pk, "algorithm": "actor_critic",
                                            "budget_steps": 2000, "seed": 0, **overrides})


def test_marketer_starts_a_training_run(marketer_client, marketer, django_capture_on_commit_callbacks):
    campaign = ActionFactory().campaign
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = start(marketer_client, campaign)
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/{run.pk}/"
    assert (run.campaign, run.budget_steps, run.created_by) == (campaign, 2000, marketer)
    assert len(callbacks) == 1  # the train_policy task is queued after the commit


def test_a_campaign_with_nothing_to_send_cannot_train_and_says_why(marketer_client):
    campaign = CampaignFactory()  # only its built-in "no contact" could be chosen
    response = start(marketer_client, campaign)
    assert response.status_code == 200
    assert "no enabled contact action" in str(response.context["form"].errors)
    assert not TrainingRun.objects.exists()


def test_bad_budget_shows_field_error_and_starts_nothing(marketer_client):
    response = start(marketer_client, CampaignFactory(), budget_steps=10)
    assert response.status_code == 200
    assert "budget_steps" in response.context["form"].errors
    assert b"id_budget_steps_errors" in response.content
    assert not TrainingRun.objects.exists()


def test_reviewer_cannot_start_or_cancel_training(reviewer_client):
    run = TrainingRunFactory(status="running")
    assert start(reviewer_client, run.campaign).status_code == 403
    assert reviewer_client.post(f"/training/{run.pk}/cancel/").status_code == 403
    run.refresh_from_db()
    assert TrainingRun.objects.count() == 1 and not run.cancel_requested


def test_progress_fragment_polls_until_the_run_is_finished(marketer_client):
    run = TrainingRunFactory(status="running", progress=0.42, eta_seconds=12.0)
    html = marketer_client.get(f"/training/{run.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in html and 'aria-valuenow="42.0"' in html and "12 s left" in html
    run.status, run.progress = "succeeded", 1.0
    run.save()
    html = marketer_client.get(f"/training/{run.pk}/progress/").content.decode()
    assert "hx-trigger" not in html and 'data-percent="100.0"' in html


def test_cancel_requests_a_running_run_to_stop(marketer_client):
    run = TrainingRunFactory(status="running")
    assert marketer_client.post(f"/training/{run.pk}/cancel/").status_code == 302
    run.refresh_from_db()
    assert run.cancel_requested


def test_run_detail_writes_the_budget_with_thousands_separators(marketer_client):
    run = TrainingRunFactory(status="succeeded", progress=1.0, budget_steps=300_000)
    html = marketer_client.get(f"/training/{run.pk}/").content.decode()
    assert "budget 300,000 simulated customer-days" in html


def test_run_detail_draws_the_learning_curve(marketer_client):
    run = TrainingRunFactory(status="succeeded", progress=1.0,
                             learning_curve={"steps": [512, 1024, 1536, 2048],
                                             "returns": [1.0, 2.0, 2.5, 2.5]})
    response = marketer_client.get(f"/training/{run.pk}/")
    assert response.context["curve_chart"]["data"][0]["y"] == [1.0, 2.0, 2.5, 2.5]
    convergence = dict(response.context["convergence"])
    assert convergence["Mean return, first fifth → last fifth"] == "1.50 → 2.50"


def test_run_detail_says_when_a_policy_planned_shorter_than_the_campaigns_discount(
        marketer_client):
    run = TrainingRunFactory(status="succeeded", progress=1.0, report={
        "planning_discount": {"used": 0.8, "campaign": 0.99}})
    convergence = dict(marketer_client.get(f"/training/{run.pk}/").context["convergence"])
    assert convergence["Daily discount planned with"].startswith(
        "0.8, not the campaign's 0.99: in a customer model fitted from logs a policy looks about "
        "5 days ahead")


def test_run_detail_says_which_retention_constraint_the_policy_trained_under(marketer_client):
    run = TrainingRunFactory(status="succeeded", progress=1.0, report={"retention_constraint": {
        "tolerance": 0.01, "control_leave_rate": 0.0025, "days": 60,
        "max_leave_rate": 0.0025 + 0.01 / 60, "leave_price": 1.5, "leave_rate": 0.0026}})
    convergence = dict(marketer_client.get(f"/training/{run.pk}/").context["convergence"])
    assert convergence["Retention constraint"] == (
        "at most 0.267% of customers lost per customer-day: the control policy's 0.250% in the "
        "same customer model, plus the campaign's retention guardrail of 1 point over 60 days; "
        "a lost customer was priced 1.50 (scaled reward) at the end of training")


def test_run_detail_says_a_fitted_model_holds_a_policy_to_the_controls_customers(marketer_client):
    run = TrainingRunFactory(status="succeeded", progress=1.0, report={"retention_constraint": {
        "tolerance": 0.0, "campaign_guardrail": False, "control_leave_rate": 0.0025, "days": 60,
        "max_leave_rate": 0.0025, "leave_price": 0.0}})
    convergence = dict(marketer_client.get(f"/training/{run.pk}/").context["convergence"])
    assert convergence["Retention constraint"] == (
        "at most 0.250% of customers lost per customer-day: the control policy's 0.250% in the "
        "same customer model: the campaign sets no retention guardrail, and in a model fitted "
        "from logs a policy is held to the control's customers; a lost customer was priced 0.00 "
        "(scaled reward) at the end of training, so the policy kept within it")


OPE_REPORT = {
    "live_version_id": None, "guardrail_rule": "paired DR gain lower bound > 0",
    "estimates": {
        "candidate": {"ips": {"value": 1.1, "lower": 0.9, "upper": 1.3, "n": 500, "ess": 300.0},
                      "snips": {"value": 1.05, "lower": 0.95, "upper": 1.15},
                      "dr": {"value": 1.0, "lower": 0.8, "upper": 1.2}},
        "control": {"dr": {"value": 0.95, "lower": 0.9, "upper": 1.0}},
    },
    "holdout_observed": {"value": 0.9, "lower": 0.8, "upper": 1.0, "n": 50},
    "paired": {"baseline": "control", "rows": 500,
               "dr": {"value": 0.05, "lower": -0.02, "upper": 0.12, "effective_sample_size": 300.0},
               "snips": {"value": 0.1, "lower": -0.01, "upper": 0.21,
                         "effective_sample_size": 300.0}},
    "guardrail": {"baseline": "control", "passed": False},
}


def test_policy_detail_shows_ope_with_intervals_vs_current_and_holdout(marketer_client):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    response = marketer_client.get(f"/training/policies/{version.pk}/")
    rows = {(r["key"], r["method"]) for r in response.context["ope_rows"]}
    assert {("candidate", "ips"), ("candidate", "snips"), ("candidate", "dr"), ("control", "dr"),
            ("holdout_observed", "observed")} <= rows
    assert not response.context["guardrail"].passed
    assert b"[0.8000, 1.2000]" in response.content


def test_policy_detail_says_the_paired_gain_over_the_baseline_in_words(marketer_client):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    html = marketer_client.get(f"/training/policies/{version.pk}/").content.decode()
    assert ("On 500 logged decisions the candidate is estimated to earn 0.05 more per "
            "customer-day than the control policy (95% CI -0.02 to +0.12; SNIPS: +0.10)") in html
    assert "the lower bound is not above 0" in html
    assert "[-0.0200, 0.1200]" in html


def test_promotion_is_refused_by_the_guardrail(marketer_client):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    response = marketer_client.post(f"/training/policies/{version.pk}/promote/", {})
    assert response.status_code == 200
    assert b"Refused by the guardrail" in response.content
    version.refresh_from_db()
    assert version.status == "candidate"


def test_marketer_cannot_force_a_promotion(marketer_client):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    response = marketer_client.post(f"/training/policies/{version.pk}/promote/", {"force": "on", "reason": "trust me"})
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.status == "candidate"


def test_admin_forced_promotion_needs_a_reason(admin_client_role):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    response = admin_client_role.post(f"/training/policies/{version.pk}/promote/", {"force": "on", "reason": ""})
    assert response.status_code == 200
    assert "reason" in response.context["promote_form"].errors
    version.refresh_from_db()
    assert version.status == "candidate"


def test_admin_forces_a_promotion_with_a_reason(admin_client_role):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    response = admin_client_role.post(f"/training/policies/{version.pk}/promote/",
                                      {"force": "on", "reason": "Black Friday: rules are known to fail"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.status == PolicyVersion.Status.LIVE and version.forced_promotion
    assert version.promotion_reason.startswith("Black Friday")


def test_reviewer_cannot_promote(reviewer_client):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    assert reviewer_client.post(f"/training/policies/{version.pk}/promote/", {}).status_code == 403


def test_policy_list_and_run_list_render_for_every_role(client, marketer, reviewer, admin_user):
    PolicyVersionFactory(ope_report=OPE_REPORT)
    TrainingRunFactory()
    for user in (marketer, reviewer, admin_user):
        client.force_login(user)
        assert client.get("/training/").status_code == 200
        assert client.get("/training/policies/").status_code == 200


def test_a_run_whose_worker_went_silent_says_so_instead_of_a_time_left(marketer_client):
    import time

    run = TrainingRunFactory(status="running", progress=0.4, eta_seconds=58.0,
                             report={"heartbeat_at": time.time() - 11 * 60})
    html = marketer_client.get(f"/training/{run.pk}/progress/").content.decode()
    assert "No progress for 11 min" in html and "its worker seems to have stopped" in html
    assert "s left" not in html


def test_a_run_with_a_fresh_heartbeat_shows_its_time_left(marketer_client):
    import time

    run = TrainingRunFactory(status="running", progress=0.4, eta_seconds=58.0,
                             report={"heartbeat_at": time.time() - 5})
    html = marketer_client.get(f"/training/{run.pk}/progress/").content.decode()
    assert "About 58 s left" in html and "No progress" not in html


def test_a_marketer_sees_promotion_blocked_in_words_and_no_reason_box(marketer_client):
    from html import unescape

    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    response = marketer_client.get(f"/training/policies/{version.pk}/")
    html = unescape(response.content.decode())
    assert "disabled" in html and "Promotion waits for the guardrail to pass:" in html
    assert response.context["guardrail"].reason in html
    assert "reason" not in response.context["promote_form"].fields


def test_an_admin_sees_the_force_box_with_its_reason(admin_client_role):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    form = admin_client_role.get(f"/training/policies/{version.pk}/").context["promote_form"]
    assert {"force", "reason"} <= set(form.fields)


def test_ope_table_is_read_out_in_plain_sentences_beside_it(marketer_client):
    from html import unescape

    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    response = marketer_client.get(f"/training/policies/{version.pk}/")
    words = response.context["ope_words"]
    assert words[0] == ("On 500 logged decisions outside the holdout, this version is estimated to "
                        "earn 1.0000 reward per decision (95 % CI 0.8000 to 1.2000), against 0.9500 "
                        "for the control rules (the holdout's).")
    assert "the guardrail reads DR" in words[1]
    assert words[2].startswith("The effective sample size (ESS) is 300 of 500")
    assert "They agree within their intervals." in words[3]
    html = unescape(response.content.decode())
    assert 'id="ope-in-words"' in html and words[0] in html


def test_ope_words_explain_a_holdout_observed_far_from_the_estimate_of_its_rules():
    from crm_console.training.selectors import ope_report_in_words

    report = {**OPE_REPORT, "holdout_observed": {"value": 2.0, "lower": 1.9, "upper": 2.1, "n": 50}}
    words = ope_report_in_words(report=report)
    assert "differ by more than their intervals allow" in words[-1]
    low_ess = {**OPE_REPORT, "estimates": {**OPE_REPORT["estimates"], "candidate": {
        **OPE_REPORT["estimates"]["candidate"],
        "ips": {"value": 1.1, "lower": 0.9, "upper": 1.3, "n": 500, "ess": 20.0}}}}
    assert "read the interval rather than the point" in ope_report_in_words(report=low_ess)[2]


@pytest.mark.parametrize("report", [{}, {"error": "no attributed decisions"},
                                    {"estimates": {"candidate": {"dr": {"value": None}}}},
                                    {"estimates": {"candidate": "garbage"}}])
def test_ope_words_are_empty_for_a_missing_or_broken_report(report):
    from crm_console.training.selectors import ope_report_in_words

    assert ope_report_in_words(report=report) == []


def test_live_policy_page_shows_its_live_status_and_how_it_went_live(admin_client_role):
    from datetime import datetime

    from django.utils import timezone

    version = PolicyVersionFactory(
        ope_report=OPE_REPORT, status="live", forced_promotion=True, promotion_reason="Black Friday",
        promoted_at=timezone.make_aware(datetime(2026, 12, 4, 12)))
    response = admin_client_role.get(f"/training/policies/{version.pk}/")
    html = response.content.decode()
    assert 'id="live-status"' in html
    assert "it went live forced past the guardrail on 4 Dec 2026" in html
    assert "Does not pass" not in html and "evaluate the candidate again" not in html
    assert "Promote to live" not in html and "Evaluate again" not in html


def test_a_polled_run_that_finished_reloads_its_page_to_show_the_result(marketer_client):
    run = TrainingRunFactory(status="running", progress=0.5)
    polled = {"HTTP_HX_REQUEST": "true"}
    assert "HX-Refresh" not in marketer_client.get(f"/training/{run.pk}/progress/", **polled)
    run.status, run.progress = "succeeded", 1.0
    run.save()
    response = marketer_client.get(f"/training/{run.pk}/progress/", **polled)
    assert response["HX-Refresh"] == "true"
    page = marketer_client.get(f"/training/{run.pk}/").content.decode()
    assert "Cancel run" not in page and "reload" not in page


def test_a_running_run_says_what_it_is_doing_while_the_bar_waits(marketer_client):
    import time

    run = TrainingRunFactory(status="running", progress=0.0, report={
        "phase": "Warm-starting from the campaign's logged decisions", "heartbeat_at": time.time()})
    html = marketer_client.get(f"/training/{run.pk}/progress/").content.decode()
    assert "Warm-starting from the campaign&#x27;s logged decisions" in html


def test_evaluate_again_queues_the_evaluation_in_the_asker_s_name(
        marketer_client, marketer, monkeypatch, django_capture_on_commit_callbacks):
    from crm_console.training import tasks

    queued = []
    monkeypatch.setattr(tasks.evaluate_policy, "delay", lambda *args, **kwargs: queued.append(kwargs))
    version = PolicyVersionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(f"/training/policies/{version.pk}/evaluate/")
    assert response.status_code == 302
    assert queued == [{"requested_by_id": marketer.pk}]


def test_starting_a_population_queues_one_task_per_member(marketer_client,
                                                          django_capture_on_commit_callbacks,
                                                          monkeypatch):
    from crm_console.celery import app
    from crm_console.training import services

    queued = []
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(services, "task_named", lambda name: type(
        "Task", (), {"delay": staticmethod(lambda run_id: queued.append((name, run_id)))}))
    campaign = ActionFactory().campaign
    with django_capture_on_commit_callbacks(execute=True):
        response = start(marketer_client, campaign, population_size=3)

    run = TrainingRun.objects.get(population_of__isnull=True)
    assert response.status_code == 302 and run.population_size == 3
    member_ids = list(run.members.order_by("pk").values_list("pk", flat=True))
    assert queued == [(services.TRAIN_POLICY_TASK, pk) for pk in member_ids]


def test_a_bad_population_size_shows_a_field_error_and_starts_nothing(marketer_client):
    response = start(marketer_client, ActionFactory().campaign, population_size=20)

    assert response.status_code == 200
    assert "population_size" in response.context["form"].errors
    assert b"id_population_size_errors" in response.content
    assert not TrainingRun.objects.exists()


def test_run_detail_shows_every_member_and_which_was_kept(marketer_client):
    run = TrainingRunFactory(status="succeeded", progress=1.0, population_size=2)
    curve = {"steps": [512, 1024], "returns": [1.0, 2.0]}
    first = TrainingRunFactory(campaign=run.campaign, population_of=run, seed=0,
                               status="succeeded", learning_curve=curve,
                               report={"held_out": {"value": 4.5, "ci_low": 4.0, "ci_high": 5.0}})
    kept = TrainingRunFactory(campaign=run.campaign, population_of=run, seed=1000,
                              status="succeeded", learning_curve=curve,
                              report={"held_out": {"value": 5.25, "ci_low": 4.5, "ci_high": 6.0}})
    run.report = {"kept_member": kept.pk}
    run.save()

    response = marketer_client.get(f"/training/{run.pk}/")

    html = response.content.decode()
    members = response.context["population"]["members"]
    assert [(m["id"], m["kept"]) for m in members] == [(first.pk, False), (kept.pk, True)]
    assert "Kept seed 1000" in html and "5.25 against 4.50 (seed 0)" in html
    assert [trace["name"] for trace in response.context["population_chart"]["data"]] == [
        "seed 0", "seed 1000 (kept)"]


def test_run_detail_shows_each_members_retention_against_the_control_and_its_guardrail(marketer_client):
    run = TrainingRunFactory(status="succeeded", progress=1.0, population_size=2)
    first = TrainingRunFactory(campaign=run.campaign, population_of=run, seed=0, status="succeeded",
                               report={"held_out": {"value": 6.0, "ci_low": 5.0, "ci_high": 7.0,
                                                    "retention": 0.72}})
    kept = TrainingRunFactory(campaign=run.campaign, population_of=run, seed=1000,
                              status="succeeded",
                              report={"held_out": {"value": 5.25, "ci_low": 4.5, "ci_high": 6.0,
                                                   "retention": 0.80}})
    run.report = {"kept_member": kept.pk, "retention_guardrail": 0.01, "control_held_out": {
        "seed": 0, "value": 4.0, "ci_low": 3.5, "ci_high": 4.5, "retention": 0.805}}
    run.save()

    html = marketer_client.get(f"/training/{run.pk}/").content.decode()

    assert "(control 80.5 %)" in html and "72.0 %" in html and "80.0 %" in html
    assert "more than 1 point below the control" in html
    assert f"seed {first.seed} retained 72.0 % and was not eligible" in html


def test_policy_detail_says_how_often_the_candidate_changes_the_choice_and_what_that_hides(
        marketer_client):
    report = {**OPE_REPORT, "paired": {**OPE_REPORT["paired"], "changed_share": 0.64}}
    version = PolicyVersionFactory(ope_report=report)
    html = marketer_client.get(f"/training/policies/{version.pk}/").content.decode()
    assert ("The candidate picks a different action from the control policy&#x27;s on 64% of "
            "these decisions") in html
    assert "watch retention against the holdout group" in html


def test_policy_detail_of_an_evaluation_without_the_changed_share_leaves_the_line_out(
        marketer_client):
    version = PolicyVersionFactory(ope_report=OPE_REPORT)
    html = marketer_client.get(f"/training/policies/{version.pk}/").content.decode()
    assert 'id="guardrail-blind-spot"' not in html
