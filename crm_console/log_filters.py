"""Logging filters: customers appear in logs by internal id only, never by their data.

A database error's message carries row data: PostgreSQL's DETAIL and CONTEXT lines quote the
offending key or JSON ("Key (email)=(ada@example.com) already exists", "JSON data, line 1:
{"email": ...") and even a primary message may quote a value ('invalid input syntax for type
integer: "ada@example.com"'). Django logs an unhandled one with its traceback (django.request),
so does Celery for a failed task. `DatabaseErrorDetailFilter` rewrites such records: every
database error in the exception chain (or among the message's arguments) is named by its class,
SQLSTATE and the table, column and constraint concerned - what an operator needs to find the
fault - and its message text is left out of the message and the traceback alike.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

from django.db import DatabaseError as DjangoDatabaseError

WITHHELD = "[database error text withheld: it may quote row data]"


class DatabaseErrorDetailFilter(logging.Filter):
    """Strip database errors' message text (row data) from a record; passes every record on."""

    def filter(self, record: logging.LogRecord) -> bool:
        errors = list(_database_errors(record))
        if not errors:
            return True
        message = record.getMessage()
        for error in errors:
            message = _without_text_of(error, message)
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            for error in errors:
                text = _without_text_of(error, text)
            record.exc_text = text.rstrip("\n")
        return True


def database_error_summary(error: BaseException) -> str:
    """What an operator may read of a database error: its kind and where, no values."""
    diag = getattr(error, "diag", None) or getattr(error.__cause__, "diag", None)
    if diag is None:  # SQLite: its messages name the constraint and columns, not the values
        return f"{WITHHELD} ({type(error).__name__})"
    cause = error if hasattr(error, "diag") else error.__cause__
    where = ", ".join(f"{name} {value}" for name, value in (
        ("table", diag.table_name), ("column", diag.column_name),
        ("constraint", diag.constraint_name)) if value)
    return (f"{WITHHELD} ({type(cause).__name__}, SQLSTATE {diag.sqlstate}"
            f"{', ' + where if where else ''})")


def _database_errors(record: logging.LogRecord) -> Iterator[BaseException]:
    candidates: list[object] = []
    if record.exc_info and record.exc_info[1] is not None:
        candidates.append(record.exc_info[1])
    args = record.args
    if isinstance(args, dict):
        candidates.extend(args.values())
    elif isinstance(args, tuple):
        candidates.extend(args)
    seen: set[int] = set()
    for candidate in candidates:
        error = candidate if isinstance(candidate, BaseException) else None
        while error is not None and id(error) not in seen:  # the whole chain: cause and context
            seen.add(id(error))
            if _is_database_error(error):
                yield error
            error = error.__cause__ or error.__context__


def _is_database_error(error: BaseException) -> bool:
    if isinstance(error, DjangoDatabaseError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is in requirements.txt
        return False
    return isinstance(error, psycopg.Error)


def _without_text_of(error: BaseException, text: str) -> str:
    """`text` with the error's message replaced, written plainly or escaped in a repr()."""
    message = str(error)
    if not message.strip():
        return text
    summary = database_error_summary(error)
    text = text.replace(message, summary)
    for line in (line.strip() for line in message.splitlines()):
        if len(line) < 8:  # a caret or a bare "DETAIL:" would match the traceback's own text
            continue
        text = text.replace(line, summary)
        text = text.replace(repr(line)[1:-1], summary)  # inside a repr(): quotes escaped
    return text
