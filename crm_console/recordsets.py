"""Model rows as one JSON parameter for set-based PostgreSQL statements (`jsonb_to_recordset`).

The hot paths (event batches, decision batches) write hundreds of rows per request. Sent as one
JSON document, the rows cost psycopg one parameter instead of thousands of placeholders to bind,
and PostgreSQL reads them back into typed columns with
`jsonb_to_recordset(...) AS r(col type, ...)`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from typing import Any

from django.db import connection
from django.db.models import DecimalField, Field, JSONField, Model


def set_based_sql() -> bool:
    """PostgreSQL gets set-based SQL (array and JSON parameters); other databases the ORM."""
    return connection.vendor == "postgresql"


def any_of(values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column <sql>` matching any of `values`, and its parameters.

    PostgreSQL takes one array parameter (one statement to plan, whatever the batch size); other
    databases get an IN list of placeholders.
    """
    if set_based_sql():
        return "= ANY(%s)", [list(values)]
    return f"IN ({', '.join(['%s'] * len(values))})", list(values)


def recordset_value(model_field: Field, value: Any) -> Any:
    """A field's value as jsonb_to_recordset reads it back into the column's type."""
    if value is None or isinstance(model_field, JSONField):
        return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()  # what the field would send, without its per-value checks
    if isinstance(value, (bool, int, str)) or (isinstance(value, float)
                                               and not isinstance(model_field, DecimalField)):
        return value
    value = model_field.get_db_prep_save(value, connection)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def recordset_columns(model_fields: Iterable[Field]) -> str:
    """The `AS r(...)` column list: `"column" type, ...`."""
    quote = connection.ops.quote_name
    return ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in model_fields)


def insertable_fields(model: type[Model]) -> list[Field]:
    """Every concrete column an INSERT sets (the auto primary key left to the database)."""
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def recordset_json(objects: Sequence[Model], model_fields: Sequence[Field], *,
                   extra: Sequence[dict[str, Any]] | None = None, adding: bool = False) -> str:
    """The objects' field values as one JSON array of {column: value}, ready for the statement.

    `adding` runs each field's `pre_save` (auto_now_add timestamps) as an INSERT through the
    ORM would; `extra` adds columns of the caller's own per object.
    """
    rows = []
    for i, obj in enumerate(objects):
        row = {f.column: recordset_value(f, f.pre_save(obj, adding) if adding else
                                         getattr(obj, f.attname)) for f in model_fields}
        if extra is not None:
            row.update(extra[i])
        rows.append(row)
    return json.dumps(rows, allow_nan=False)


def rows_update(objects: Sequence[Any], field_names: Sequence[str], *,
                model: type[Model] | None = None, batch_size: int = 5_000) -> int:
    """UPDATE `field_names` of `objects` (rows of `model`, by default their own class, matched by
    primary key; any object with `pk` and the fields' attributes will do); returns the rows.

    `bulk_update` builds a CASE WHEN per row and field, which costs seconds for a few thousand
    rows (pricing 20,000 decisions: 30.3 s -> 5.3 s, benchmarks/attribution_scale.py). On
    PostgreSQL each batch travels as one JSON document (`UPDATE ... FROM jsonb_to_recordset`), so
    psycopg has no thousands of placeholders to split and quote; other databases get one prepared
    UPDATE run by executemany.
    """
    if not objects:
        return 0
    meta = (model or type(objects[0]))._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in field_names]
    table, key = quote(meta.db_table), meta.pk
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objects), batch_size):
            chunk = objects[start:start + batch_size]
            if set_based_sql():
                assignments = ", ".join(f"{quote(f.column)} = r.{quote(f.column)}" for f in fields)
                cursor.execute(
                    f"UPDATE {table} AS t SET {assignments} "
                    f"FROM jsonb_to_recordset(%s::jsonb) AS r({recordset_columns([key, *fields])}) "
                    f"WHERE t.{quote(key.column)} = r.{quote(key.column)}",
                    [recordset_json(chunk, [key, *fields])])
                updated += cursor.rowcount
            else:
                assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
                cursor.executemany(
                    f"UPDATE {table} SET {assignments} WHERE {quote(key.column)} = %s",
                    [[*(f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields),
                      row.pk] for row in chunk])
                updated += len(chunk)
    return updated


def rows_copy(objects: Sequence[Model], *, model: type[Model] | None = None,
              batch_size: int = 2_000) -> int:
    """INSERT new rows in bulk without their primary keys coming back; returns how many.

    PostgreSQL: one `COPY ... FROM STDIN` (psycopg 3 `cursor.copy`), row by row into the stream -
    no statement to parse per batch and no parameters to bind. Other databases: `bulk_create`.
    Field defaults and `auto_now_add` apply as for an ORM INSERT (`pre_save`).
    """
    if not objects:
        return 0
    model = model or type(objects[0])
    if not set_based_sql():
        model.objects.bulk_create(objects, batch_size=batch_size)
        return len(objects)
    quote = connection.ops.quote_name
    fields = insertable_fields(model)
    columns = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
                f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj in objects:
                copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection)
                                for f in fields])
    return len(objects)
