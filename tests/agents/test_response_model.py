"""The customer-response model fitted from logs: validation, fitting, ranking, saving, replay."""

import numpy as np
import pytest

from agents.response_model import (
    NotEnoughData,
    ResponseLog,
    ResponseModel,
    _balancing_weights,
    _worst_miss,
    split_by_days,
    validate,
)
from tests.agents.response_logs import rules_logs


@pytest.fixture(scope="module")
def retail_log():
    """20 days of 1,000 retail customers under the rules with 10 % exploration."""
    log, env, _ = rules_logs(1000, 20_000, seed=3)
    return log, env.catalogue


@pytest.fixture(scope="module")
def fitted(retail_log):
    log, catalogue = retail_log
    held = np.random.default_rng(0).random(len(log)) < 0.2
    return (ResponseModel.fit(log.subset(~held), catalogue, n_members=3, epochs=60, seed=0),
            log.subset(held))


def _tiny_log(n=10, **overrides):
    values = dict(obs=np.zeros((n, 3)), actions=np.ones(n), opens=np.zeros(n),
                  clicks=np.zeros(n), conversions=np.zeros(n), revenue=np.zeros(n),
                  unsubscribes=np.zeros(n), churned=np.zeros(n, bool), n_actions=5)
    values.update(overrides)
    return ResponseLog(**values)


def test_log_rejects_a_nan_revenue():
    revenue = np.zeros(10)
    revenue[3] = np.nan
    with pytest.raises(ValueError, match="revenue must be finite"):
        _tiny_log(revenue=revenue)


def test_log_rejects_an_action_outside_the_catalogue():
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 5\)"):
        _tiny_log(actions=np.full(10, 7))


def test_log_rejects_misaligned_rows():
    with pytest.raises(ValueError, match="clicks must have shape"):
        _tiny_log(clicks=np.zeros(9))


@pytest.mark.parametrize("bad", [0.0, 1.5, np.nan])
def test_log_rejects_propensities_outside_zero_to_one(bad):
    propensities = np.full(10, 0.5)
    propensities[2] = bad
    with pytest.raises(ValueError, match=r"propensities must lie in \(0, 1\]"):
        _tiny_log(propensities=propensities)


def test_logs_collected_from_the_simulator_carry_the_logging_propensities(retail_log):
    log, _ = retail_log
    assert log.propensities is not None
    assert 0.0 < log.propensities.min() < 0.05 and log.propensities.max() <= 1.0


def test_balancing_weighs_the_rare_exploration_rows_up_to_the_cap():
    propensities = np.array([0.9] * 8 + [0.01, 0.001])

    weights = _balancing_weights(_tiny_log(propensities=propensities), balance=20.0)

    assert weights.mean() == pytest.approx(1.0)
    assert weights[8] / weights[0] == pytest.approx(20.0)
    assert weights[9] == pytest.approx(weights[8])  # capped alike


def test_a_log_without_propensities_counts_every_row_once():
    assert _balancing_weights(_tiny_log(), balance=100.0) is None
    assert _balancing_weights(_tiny_log(propensities=np.full(10, 0.2)), balance=1.0) is None


def test_fit_refuses_a_balance_below_one(retail_log):
    log, catalogue = retail_log
    with pytest.raises(ValueError, match="balance must be a number >= 1"):
        ResponseModel.fit(log, catalogue, balance=0.5)


def test_fit_refuses_too_little_data_and_says_how_much_is_needed(retail_log):
    log, catalogue = retail_log
    with pytest.raises(NotEnoughData, match="at least 2,000 logged decisions.*500 decisions"):
        ResponseModel.fit(log.subset(np.arange(500)), catalogue)


def test_fit_starts_churn_at_the_logged_rate_not_at_even_odds(retail_log):
    log, catalogue = retail_log
    barely_trained = ResponseModel.fit(log, catalogue, n_members=2, epochs=1,
                                       learning_rate=1e-9, seed=0, recent_days=None)
    predicted = barely_trained.predict(log.obs, log.actions)["churn"].mean()
    observed = log.churned.mean()
    assert observed < 0.05
    assert predicted == pytest.approx(observed, rel=0.25)


def _with_recent_outcome_halved(log, outcome, recent_days):
    """`log` with every other event of `outcome` in its last `recent_days` days taken back: the
    customers of today respond half as often as those of the history."""
    events = getattr(log, outcome).copy()
    recent_events = np.flatnonzero((events > 0) & (log.days > log.days.max() - recent_days))
    events[recent_events[::2]] = 0
    return ResponseLog(**{**{f: getattr(log, f) for f in (
        "obs", "actions", "opens", "clicks", "conversions", "revenue", "unsubscribes", "churned",
        "days", "n_actions", "propensities")}, outcome: events})


def test_fit_brings_the_churn_rate_to_the_recent_days_level(retail_log):
    """The last week's customers leave 3 % a day, far above the history's rate: the levelled
    model predicts the week's rate, the whole-history model does not."""
    log, catalogue = retail_log
    recent = log.days > log.days.max() - 7
    churned = log.churned.copy()
    churned[recent & (np.random.default_rng(0).random(len(log)) < 0.03)] = True
    log = ResponseLog(**{**{f: getattr(log, f) for f in (
        "obs", "actions", "opens", "clicks", "conversions", "revenue", "unsubscribes", "days",
        "n_actions", "propensities")}, "churned": churned})
    settings = dict(n_members=2, epochs=10, seed=0)
    whole_history = ResponseModel.fit(log, catalogue, recent_days=None, **settings)
    levelled = ResponseModel.fit(log, catalogue, recent_days=7, **settings)
    observed = churned[recent].mean()
    before = whole_history.predict(log.obs[recent], log.actions[recent])["churn"].mean()
    after = levelled.predict(log.obs[recent], log.actions[recent])["churn"].mean()
    assert before < 0.5 * observed
    assert after == pytest.approx(observed, rel=0.25)
    assert levelled.recent_levels["churn"] > 2 and whole_history.recent_levels == {}


def test_fit_leaves_the_open_rate_at_the_history_level(retail_log):
    """Only leaving drifts as the likely leavers leave: opens, clicks and orders are not
    levelled."""
    log, catalogue = retail_log
    log = _with_recent_outcome_halved(log, "opens", recent_days=7)
    recent = log.days > log.days.max() - 7
    settings = dict(n_members=2, epochs=10, seed=0)
    whole_history = ResponseModel.fit(log, catalogue, recent_days=None, **settings)
    levelled = ResponseModel.fit(log, catalogue, recent_days=7, **settings)
    np.testing.assert_allclose(
        levelled.predict(log.obs[recent], log.actions[recent])["open"],
        whole_history.predict(log.obs[recent], log.actions[recent])["open"], rtol=1e-5)
    assert set(levelled.recent_levels) == {"unsubscribe", "churn"}


def test_fit_keeps_most_of_the_history_level_where_the_recent_days_hold_few_events(retail_log):
    """A week of 1,000 customers holds a handful of churns: halving them moves the level little."""
    log, catalogue = retail_log
    log = _with_recent_outcome_halved(log, "churned", recent_days=7)
    levelled = ResponseModel.fit(log, catalogue, recent_days=7, n_members=2, epochs=10, seed=0)
    assert log.churned[log.days > log.days.max() - 7].sum() < 15
    assert levelled.recent_levels["churn"] > 0.75


def test_fit_does_not_level_a_log_without_days(retail_log):
    log, catalogue = retail_log
    undated = ResponseLog(**{**{f: getattr(log, f) for f in (
        "obs", "actions", "opens", "clicks", "conversions", "revenue", "unsubscribes",
        "churned", "n_actions")}, "days": None})
    assert ResponseModel.fit(undated, catalogue, n_members=2, epochs=2).recent_levels == {}


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_fit_refuses_recent_days_that_are_not_whole_days(retail_log, bad):
    log, catalogue = retail_log
    with pytest.raises(ValueError, match="recent_days must be a whole number of days >= 1"):
        ResponseModel.fit(log, catalogue, recent_days=bad)


def test_split_by_days_holds_out_the_most_recent_days(retail_log):
    log, _ = retail_log
    train, held_out = split_by_days(log, held_out_days=4)
    assert train.days.max() < held_out.days.min()
    assert len(train) + len(held_out) == len(log)


def test_model_ranks_a_contact_the_true_world_makes_better_above_no_contact(fitted, retail_log):
    """Retail's best responders to email discounts: an email with an offer beats staying silent
    in expected orders, and no contact is never opened."""
    model, held_out = fitted
    _, catalogue = retail_log
    obs = held_out.obs[:500]
    email = next(i for i, a in enumerate(catalogue.actions)
                 if a.channel == "email" and a.offer is not None and i > 0)
    silent = model.predict(obs, np.zeros(500, dtype=np.int64))
    contact = model.predict(obs, np.full(500, email))
    assert contact["open"].mean() > 0.02 and (silent["open"] == 0).all()
    assert contact["conversions"].mean() > silent["conversions"].mean()


def test_to_bytes_round_trip_predicts_the_same(fitted):
    model, held_out = fitted
    again = ResponseModel.from_bytes(model.to_bytes())
    a, b = model.predict(held_out.obs[:50], held_out.actions[:50]), \
        again.predict(held_out.obs[:50], held_out.actions[:50])
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6)
    assert again.catalogue.to_dict() == model.catalogue.to_dict()
    assert again.n_rows == model.n_rows and again.fitted_features == model.fitted_features
    assert again.recent_levels == model.recent_levels and "churn" in model.recent_levels
    assert again.recent_days == model.recent_days == 7


def test_predict_reports_the_members_disagreement_as_uncertainty(fitted):
    model, held_out = fitted
    out = model.predict(held_out.obs[:100], held_out.actions[:100])
    assert out["uncertainty"].shape == (100,) and (out["uncertainty"] >= 0).all()
    assert out["uncertainty"].max() > 0


def test_validate_passes_the_honest_model(fitted):
    model, held_out = fitted
    report = validate(model, held_out)
    assert report["within_tolerance"], report["worst_miss"]
    assert "email" in report["by_channel"] and "no_contact" in report["by_channel"]


def test_validate_reports_the_levels_the_model_was_brought_to(fitted):
    model, held_out = fitted
    report = validate(model, held_out)
    assert report["recent_levels"] == {"days": 7, "factors": model.recent_levels}
    assert set(model.recent_levels) == {"unsubscribe", "churn"}


def test_validate_names_a_failing_kpi_not_a_larger_miss_inside_its_interval(fitted):
    """Unsubscribes 40 % off but inside their wide interval pass; clicks 20 % off and outside
    theirs fail: the report names clicks."""
    model, held_out = fitted
    rows = validate(model, held_out)["totals"]
    for kpi, miss, inside in (("unsubscribe_rate", 0.4, True), ("click_rate", 0.2, False)):
        rows[kpi].update(relative_miss=miss, within_tolerance=inside, enough_support=True)
    assert _worst_miss(rows) == {"kpi": "click_rate", "relative_miss": 0.2}


def test_validate_flags_a_model_whose_predictions_are_scaled_wrong(fitted):
    model, held_out = fitted
    broken = ResponseModel.from_bytes(model.to_bytes())
    broken.revenue_scale *= 2.0  # every order worth twice what it is
    report = validate(broken, held_out)
    assert not report["within_tolerance"]
    assert report["worst_miss"]["kpi"] == "revenue_per_decision"
