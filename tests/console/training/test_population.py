"""Population runs: members trained apart, the best on held-out customers kept, every member shown."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from agents import population
from crm_console.decisioning.policy_runtime import policy_agent
from crm_console.training import agents_training, selectors, services
from crm_console.training.models import TrainingRun

pytestmark = pytest.mark.django_db

BUDGET = 2_000


def population_for(campaign, size=3, **kwargs) -> TrainingRun:
    options = {"budget_steps": BUDGET, "warm_start": False, "enqueue": False,
               "population_size": size, **kwargs}
    return services.training_run_create(campaign=campaign, **options)


def test_a_population_run_gets_one_member_per_seed(demo_campaign):
    run = population_for(demo_campaign, size=3, seed=4)

    members = list(run.members.order_by("pk"))
    assert [m.seed for m in members] == population.member_seeds(4, 3)
    assert all(m.budget_steps == BUDGET and m.algorithm == run.algorithm for m in members)
    assert services.training_run_task_ids(training_run=run) == [m.pk for m in members]


def test_a_run_of_one_policy_has_no_members(demo_campaign):
    run = population_for(demo_campaign, size=1)

    assert not run.members.exists()
    assert services.training_run_task_ids(training_run=run) == [run.pk]


@pytest.mark.parametrize("size", [0, population.MAX_SIZE + 1])
def test_a_population_size_out_of_range_is_refused_and_nothing_is_written(demo_campaign, size):
    with pytest.raises(ValidationError) as refused:
        population_for(demo_campaign, size=size)

    assert "population_size" in refused.value.message_dict
    assert not TrainingRun.objects.exists()


def test_a_population_of_rules_is_refused_in_words(demo_campaign):
    with pytest.raises(ValidationError) as refused:
        population_for(demo_campaign, size=3, algorithm="rule_based")

    assert "learns nothing" in refused.value.message_dict["population_size"][0]
    assert not TrainingRun.objects.exists()


def test_a_seed_whose_last_member_would_overflow_is_refused(demo_campaign):
    with pytest.raises(ValidationError) as refused:
        population_for(demo_campaign, size=3, seed=services.SEED_MAX - 10)

    assert "seed" in refused.value.message_dict
    assert not TrainingRun.objects.exists()


def test_a_member_stores_its_policy_and_held_out_return_but_no_version(demo_campaign):
    run = population_for(demo_campaign)
    member = run.members.order_by("pk").first()

    member = services.training_run_execute(training_run_id=member.pk, task_id="m1")

    assert member.status == TrainingRun.Status.SUCCEEDED, member.error
    assert member.policy_version is None and member.member_artifact
    held_out = member.report["held_out"]
    assert held_out["ci_low"] <= held_out["value"] <= held_out["ci_high"]
    assert 0.0 <= held_out["retention"] <= 1.0
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING  # the others are still to train
    assert not services.training_population_ready(training_run_id=run.pk)


def test_the_population_keeps_the_member_with_the_highest_held_out_return(demo_campaign,
                                                                         monkeypatch):
    by_seed = {0: 10.0, 1000: 30.0, 2000: 20.0}
    monkeypatch.setattr(agents_training, "held_out_value", lambda *, agent, campaign, seed:
                        population.MemberValue(agent.seed, by_seed[agent.seed], 0.0, 40.0))
    run = population_for(demo_campaign)

    run = services.training_run_execute(training_run_id=run.pk, task_id="p1")

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    kept = run.members.get(seed=1000)
    assert run.report["kept_member"] == kept.pk
    assert run.policy_version.metrics["member_seed"] == 1000
    assert run.learning_curve == kept.learning_curve
    assert [row["kept"] for row in run.report["population"]] == [False, True, False]
    assert not run.members.exclude(member_artifact=None).exists()  # kept in the version only


def retention_by_seed(monkeypatch) -> None:
    """Members and control measured as given: seed 1000 earns most but loses retention."""
    by_seed = {0: (10.0, 0.80), 1000: (30.0, 0.70), 2000: (20.0, 0.805)}
    monkeypatch.setattr(agents_training, "held_out_value", lambda *, agent, campaign, seed:
                        population.MemberValue(agent.seed, by_seed[agent.seed][0], 0.0, 40.0,
                                               by_seed[agent.seed][1]))
    monkeypatch.setattr(agents_training, "control_held_out_value", lambda *, campaign, seed:
                        population.MemberValue(seed, 8.0, 7.0, 9.0, 0.81))


def test_a_campaigns_retention_guardrail_holds_members_to_its_control_policy(demo_campaign,
                                                                            monkeypatch):
    retention_by_seed(monkeypatch)
    demo_campaign.retention_guardrail_points = Decimal("1.0")
    demo_campaign.save()
    run = population_for(demo_campaign)

    run = services.training_run_execute(training_run_id=run.pk, task_id="p1")

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.report["kept_member"] == run.members.get(seed=2000).pk
    assert run.report["control_held_out"]["retention"] == 0.81
    assert run.report["retention_guardrail"] == 0.01
    why = selectors.training_population(training_run=run)["why"]
    assert "within 1 point of the control policy's (81.0 %)" in why
    assert "seed 1000 retained 70.0 % and was not eligible" in why


def test_without_a_retention_guardrail_the_highest_return_is_kept(demo_campaign, monkeypatch):
    retention_by_seed(monkeypatch)
    run = population_for(demo_campaign)

    run = services.training_run_execute(training_run_id=run.pk, task_id="p1")

    assert run.report["kept_member"] == run.members.get(seed=1000).pk
    assert run.report["retention_guardrail"] is None
    assert run.report["control_held_out"]["retention"] == 0.81  # shown, not applied
    assert "not eligible" not in selectors.training_population(training_run=run)["why"]


def test_a_campaigns_retention_guardrail_trains_each_member_under_a_leave_limit(demo_campaign):
    demo_campaign.retention_guardrail_points = Decimal("1.5")
    demo_campaign.save()

    run = services.training_run_execute(training_run_id=population_for(demo_campaign, size=2).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    for member in run.members.all():
        constraint = member.report["retention_constraint"]
        assert constraint["tolerance"] == 0.015
        assert constraint["max_leave_rate"] == pytest.approx(
            constraint["control_leave_rate"] + 0.015 / constraint["days"])
        assert constraint["leave_price"] >= 0.0
    kept = policy_agent(run.policy_version)
    assert kept.config.max_leave_rate == run.report["retention_constraint"]["max_leave_rate"]


def test_without_a_retention_guardrail_the_built_in_simulator_sets_no_leave_limit(demo_campaign):
    run = services.training_run_execute(training_run_id=population_for(demo_campaign, size=2).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert all("retention_constraint" not in m.report for m in run.members.all())
    assert policy_agent(run.policy_version).config.max_leave_rate is None


def test_the_control_policy_is_measured_on_the_members_held_out_customers(demo_campaign):
    run = population_for(demo_campaign, size=2, seed=3)
    control = agents_training.control_held_out_value(campaign=demo_campaign, seed=3)
    again = agents_training.control_held_out_value(campaign=demo_campaign, seed=3)

    assert control == again and 0.0 <= control.retention <= 1.0
    assert control.seed == run.seed


def test_a_guarded_population_whose_control_cannot_be_measured_fails_saying_why(demo_campaign,
                                                                       monkeypatch):
    def broken_control(*, campaign, seed):
        raise RuntimeError("no control policy")

    monkeypatch.setattr(agents_training, "control_held_out_value", broken_control)
    demo_campaign.retention_guardrail_points = Decimal("1.0")
    demo_campaign.save()
    run = services.training_run_execute(training_run_id=population_for(demo_campaign, size=2).pk)

    assert run.status == TrainingRun.Status.FAILED
    assert "Measuring the control policy on the held-out customers failed" in run.error
    assert run.policy_version is None


def test_without_a_guardrail_a_control_that_cannot_be_measured_is_only_left_out(demo_campaign,
                                                                                monkeypatch):
    def broken_control(*, campaign, seed):
        raise RuntimeError("no control policy")

    monkeypatch.setattr(agents_training, "control_held_out_value", broken_control)
    run = services.training_run_execute(training_run_id=population_for(demo_campaign, size=2).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.report["control_held_out"] is None


def test_a_population_with_a_failed_member_keeps_the_best_of_the_others(demo_campaign,
                                                                       monkeypatch):
    real_fit = agents_training.agent_fit

    def fit_failing_for_seed_0(*, agent, simulator, total_steps, callback):
        if agent.seed == 0:
            raise RuntimeError("out of memory")
        return real_fit(agent=agent, simulator=simulator, total_steps=total_steps,
                        callback=callback)

    monkeypatch.setattr(agents_training, "agent_fit", fit_failing_for_seed_0)
    run = services.training_run_execute(training_run_id=population_for(demo_campaign).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.members.get(seed=0).status == TrainingRun.Status.FAILED
    assert run.members.get(pk=run.report["kept_member"]).seed != 0


def test_a_population_whose_members_all_failed_fails_saying_why(demo_campaign, monkeypatch):
    def failing_fit(**kwargs):
        raise RuntimeError("simulator exploded")

    monkeypatch.setattr(agents_training, "agent_fit", failing_fit)
    run = services.training_run_execute(training_run_id=population_for(demo_campaign, size=2).pk)

    assert run.status == TrainingRun.Status.FAILED
    assert "No member of the population finished" in run.error
    assert "simulator exploded" in run.error
    assert run.policy_version is None


def test_choosing_before_every_member_finished_does_nothing(demo_campaign):
    run = population_for(demo_campaign)

    chosen = services.training_population_select(training_run_id=run.pk)

    assert chosen.status == TrainingRun.Status.QUEUED and chosen.policy_version is None


def test_cancelling_a_population_cancels_its_members(demo_campaign):
    run = population_for(demo_campaign)

    services.training_run_cancel(training_run=run)

    assert set(run.members.values_list("status", flat=True)) == {TrainingRun.Status.CANCELLED}
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED


def test_members_are_left_out_of_the_run_list(demo_campaign):
    from crm_console.training.selectors import training_run_list

    run = population_for(demo_campaign)

    assert list(training_run_list()) == [run]


def test_a_lost_choice_is_queued_again_by_the_stale_run_check(demo_campaign, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    run = population_for(demo_campaign, size=2)
    long_ago = timezone.now() - timedelta(hours=1)
    run.members.update(status=TrainingRun.Status.FAILED, finished_at=long_ago)
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING,
                                                 started_at=long_ago)
    queued = []
    monkeypatch.setattr(services, "task_named", lambda name: type(
        "Task", (), {"delay": staticmethod(lambda *args: queued.append((name, args)))}))

    assert services.training_runs_recover_stale() == [run.pk]
    assert queued == [(services.SELECT_POPULATION_TASK, (run.pk,))]
