"""Model rows as one JSON parameter for set-based PostgreSQL statements."""

from __future__ import annotations

import json
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest

from crm_console import recordsets
from crm_console.campaigns.models import Action
from crm_console.decisioning.models import Decision, Explanation


def field(model, name):
    return model._meta.get_field(name)


def test_json_fields_travel_as_json_and_timestamps_as_iso_text():
    at = datetime(2026, 11, 23, 12, 30, tzinfo=dt_timezone.utc)
    assert recordsets.recordset_value(field(Decision, "context"), {"page": "home"}) == {"page": "home"}
    text = recordsets.recordset_value(field(Decision, "decided_at"), at)
    assert isinstance(text, str) and text[:10] == "2026-11-23" and text[11:16] == "12:30"


def test_decimals_travel_as_exact_text():
    assert recordsets.recordset_value(field(Action, "cost"), Decimal("0.10")) == "0.10"


def test_insertable_fields_leave_the_primary_key_to_the_database():
    names = [f.name for f in recordsets.insertable_fields(Explanation)]
    assert "id" not in names and "decision" in names and "computed_at" in names


@pytest.mark.django_db
def test_adding_fills_auto_now_add_timestamps_like_an_orm_insert():
    explanation = Explanation(method="linear", base_value=0.0, explained_value=1.0, shap_values={},
                              sentence="because")
    rows = json.loads(recordsets.recordset_json(
        [explanation], [field(Explanation, "computed_at")], adding=True))
    assert rows[0]["computed_at"] is not None


def test_non_finite_numbers_are_refused_before_reaching_the_database():
    explanation = Explanation(base_value=float("nan"))
    with pytest.raises(ValueError):
        recordsets.recordset_json([explanation], [field(Explanation, "base_value")])


def test_floats_for_decimal_columns_go_through_the_field():
    value = recordsets.recordset_value(field(Action, "cost"), 0.1)
    assert isinstance(value, str) and Decimal(value) == Decimal("0.1")


def test_values_already_in_column_form_pass_through():
    assert recordsets.recordset_value(field(Decision, "propensity"), 0.25) == 0.25
    assert recordsets.recordset_value(field(Decision, "holdout"), True) is True
    assert recordsets.recordset_value(field(Decision, "policy_name"), "rule_based") == "rule_based"


def test_any_of_matches_each_value_on_every_database(monkeypatch):
    sql, params = recordsets.any_of(["a", "b", "c"])
    if recordsets.set_based_sql():
        assert (sql, params) == ("= ANY(%s)", [["a", "b", "c"]])
    else:
        assert (sql, params) == ("IN (%s, %s, %s)", ["a", "b", "c"])
    monkeypatch.setattr(recordsets, "set_based_sql", lambda: False)
    assert recordsets.any_of([7]) == ("IN (%s)", [7])


@pytest.mark.django_db
def test_rows_update_writes_only_the_named_fields_of_each_row_by_its_key():
    from tests.factories import DecisionFactory

    first, second = DecisionFactory(reward=None), DecisionFactory(reward=None)
    first.reward, second.reward = 1.5, -0.25
    first.reward_components = {"revenue": 3.0}
    first.status = second.status = "released"  # not named: must not be written
    assert recordsets.rows_update([first, second], ["reward", "reward_components"]) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.reward, second.reward) == (1.5, -0.25)
    assert first.reward_components == {"revenue": 3.0}
    assert first.status == second.status == "decided"


@pytest.mark.django_db
def test_rows_copy_inserts_every_field_as_the_orm_would():
    from tests.factories import DecisionFactory

    template = DecisionFactory()
    rows = [Decision(campaign=template.campaign, customer=template.customer,
                     action=template.action, policy_name="imported", action_index=1,
                     propensity=0.25, features=[0.5, None], action_mask=[True, False],
                     context={"contact_id": f"c-{i}", "note": "ü \t tab"},
                     decided_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt_timezone.utc))
            for i in range(3)]

    assert recordsets.rows_copy(rows, model=Decision) == 3

    copied = Decision.objects.filter(policy_name="imported").order_by("id")
    assert [d.context["contact_id"] for d in copied] == ["c-0", "c-1", "c-2"]
    first = copied[0]
    assert first.features == [0.5, None] and first.action_mask == [True, False]
    assert first.context["note"] == "ü \t tab"
    assert first.decided_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt_timezone.utc)
    assert first.status == "decided" and first.send_at is None and first.holdout is False
