"""Where a decision meets the database: the locked read of the batch's customers and the one
write of its decisions, explanations and the customers' profiles.

`services.decisions_create` reads here, chooses (`choice`), explains, then writes here; nothing
here decides anything.
"""

from __future__ import annotations

import functools

from django.db import connection

from crm_console import recordsets
from crm_console.customers.locks import customers_lock
from crm_console.customers.models import Customer
from crm_console.customers.services import customers_save_fields
from crm_console.decisioning.models import Decision, Explanation


DECISION_CUSTOMER_FIELDS = ("external_id", "time_zone", "profile_state", "profile_updated_at",
                            "erased_at")
"""What a decision reads of a customer (not the personal data nor the CRM's traits)."""


def customers_locked(external_ids: list[str]) -> dict[str, Customer]:
    """The customers of these CRM ids that exist, by id, locked for this transaction (row locks
    on PostgreSQL, ordered by id, the lock order everywhere; the write lock on SQLite)."""
    locks_rows = connection.features.has_select_for_update
    # one statement reads and locks, written out because it pays: the ORM's query building cost
    # 0.3-0.7 ms of CPU more per decision (benchmarks/decision_latency.py, "locked customer read":
    # 0.48-0.59 ms written out, 0.84-1.16 ms through the ORM; BENCHMARKS.md, issue 20)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(Customer._meta.get_field(name).column)
                        for name in ("id", *DECISION_CUSTOMER_FIELDS))
    wanted, params = recordsets.any_of(external_ids)
    sql = (f"SELECT {columns} FROM {quote(Customer._meta.db_table)} "
           f"WHERE {quote('external_id')} {wanted} "
           f"ORDER BY {quote('id')}{' FOR UPDATE' if locks_rows else ''}")
    found = {c.external_id: c for c in Customer.objects.raw(sql, params)}
    if not locks_rows:
        customers_lock([c.pk for c in found.values()])
    return found


PROFILE_COLUMNS = ("profile_state", "profile_updated_at")
"""The customer's columns that hold the behaviour profile (written with the decisions)."""


@functools.cache
def _decisions_write_statement() -> tuple[str, list, list, list]:
    """The PostgreSQL statement of `decisions_write` and its field lists (built once)."""
    quote = connection.ops.quote_name
    decision_fields = recordsets.insertable_fields(Decision)
    explanation_fields = [f for f in recordsets.insertable_fields(Explanation)
                          if f.name != "decision"]
    profile_fields = [Customer._meta.get_field(name) for name in PROFILE_COLUMNS]
    d_columns = ", ".join(quote(f.column) for f in decision_fields)
    e_columns = ", ".join(quote(f.column) for f in explanation_fields)
    sql = (
        f"WITH decision_rows AS ("
        f"INSERT INTO {quote(Decision._meta.db_table)} ({d_columns}) SELECT {d_columns} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS r({recordsets.recordset_columns(decision_fields)}) "
        f"RETURNING id, customer_id), "
        f"explanation_rows AS ("
        f"INSERT INTO {quote(Explanation._meta.db_table)} (decision_id, {e_columns}) "
        f"SELECT d.id, {', '.join(f'x.{quote(f.column)}' for f in explanation_fields)} "
        f"FROM decision_rows d JOIN jsonb_to_recordset(%s::jsonb) AS x(customer_id bigint, "
        f"{recordsets.recordset_columns(explanation_fields)}) ON x.customer_id = d.customer_id "
        f"RETURNING id, decision_id), "
        f"profile_rows AS ("
        f"UPDATE {quote(Customer._meta.db_table)} AS c SET "
        f"{', '.join(f'{quote(f.column)} = p.{quote(f.column)}' for f in profile_fields)} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS p(id bigint, "
        f"{recordsets.recordset_columns(profile_fields)}) WHERE c.id = p.id) "
        f"SELECT 0, id, customer_id FROM decision_rows "
        f"UNION ALL SELECT 1, id, decision_id FROM explanation_rows"
    )
    return sql, decision_fields, explanation_fields, profile_fields


def decisions_write(decisions: list[Decision], explanations: list[Explanation | None],
                    customers: list[Customer]) -> None:
    """The decisions, their explanations and the customers' profiles: one statement on PostgreSQL
    (`decisions_write_one_statement`), the ORM's three writes elsewhere (`decisions_write_orm`)."""
    if recordsets.set_based_sql():
        decisions_write_one_statement(decisions, explanations, customers)
    else:
        decisions_write_orm(decisions, explanations, customers)


def decisions_write_orm(decisions: list[Decision], explanations: list[Explanation | None],
                        customers: list[Customer]) -> None:
    Decision.objects.bulk_create(decisions, batch_size=1000)
    customers_save_fields(customers, list(PROFILE_COLUMNS))
    # saving copies each decision's new id onto its explanation
    Explanation.objects.bulk_create([e for e in explanations if e is not None], batch_size=1000)


def decisions_write_one_statement(decisions: list[Decision], explanations: list[Explanation | None],
                                  customers: list[Customer]) -> None:
    """PostgreSQL: one data-modifying WITH statement, one round trip for 1 or 1,000 decisions (a
    batch never holds a customer twice, so explanations find their decision by customer).

    Written out because it pays: see "storage's write paths" in BENCHMARKS.md
    (`benchmarks/decision_latency.py`, the same decisions written both ways and rolled back).
    The rows come back as the ORM's bulk_create leaves them: saved, with their ids.
    """
    sql, decision_fields, explanation_fields, profile_fields = _decisions_write_statement()
    explained = [(d, e) for d, e in zip(decisions, explanations) if e is not None]
    params = [
        recordsets.recordset_json(decisions, decision_fields, adding=True),
        recordsets.recordset_json([e for _, e in explained], explanation_fields, adding=True,
                                  extra=[{"customer_id": d.customer_id} for d, _ in explained]),
        recordsets.recordset_json(customers, profile_fields,
                                  extra=[{"id": c.pk} for c in customers]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.fetchall()
    by_customer = {d.customer_id: d for d in decisions}
    explanation_of = {d.customer_id: e for d, e in explained}
    customer_of = {}
    # the rows left saved, as QuerySet.bulk_create leaves its objects (it sets the same two
    # `_state` attributes: Django has no public call that marks an object as stored)
    for kind, row_id, key in sorted(written):  # decisions (0) before explanations (1)
        if kind == 0:
            decision = by_customer[key]
            decision.pk, customer_of[row_id] = row_id, key
        else:
            decision = by_customer[customer_of[key]]
            explanation = explanation_of[decision.customer_id]
            explanation.pk, explanation.decision = row_id, decision
            explanation._state.adding, explanation._state.db = False, connection.alias
        decision._state.adding, decision._state.db = False, connection.alias
