"""Database errors reach the logs without the row data PostgreSQL quotes in them."""

from __future__ import annotations

import io
import logging

import psycopg
import pytest
from django.db import DataError, IntegrityError, connection, transaction

from crm_console.customers.models import Customer
from crm_console.log_filters import DatabaseErrorDetailFilter

EMAIL = "ada.lovelace@example.com"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL quotes row data in its errors (set DATABASE_URL); SQLite does not")


@pytest.fixture
def console_log():
    """What the settings' console handler writes (the one every logger ends in)."""
    handler = next(h for h in logging.getLogger().handlers
                   if any(isinstance(f, DatabaseErrorDetailFilter) for f in h.filters))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def _logged_failure(logger_name: str, create) -> None:
    try:
        with transaction.atomic():
            create()
    except (IntegrityError, DataError):
        logging.getLogger(logger_name).exception("Internal Server Error: /api/v1/events")
    else:  # pragma: no cover - the test's premise
        pytest.fail("the database accepted the row")


@on_postgresql
@pytest.mark.django_db
def test_unique_violation_is_logged_without_the_duplicate_key_value(console_log):
    Customer.objects.create(external_id=EMAIL)
    _logged_failure("django.request", lambda: Customer.objects.create(external_id=EMAIL))
    output = console_log.getvalue()
    assert "IntegrityError" in output and "SQLSTATE 23505" in output
    assert "customers_customer" in output  # the operator still sees where
    assert EMAIL not in output


@on_postgresql
@pytest.mark.django_db
def test_json_the_database_refuses_is_logged_without_the_json(console_log):
    _logged_failure("django.request", lambda: Customer.objects.create(
        external_id="c-1", traits={"email": EMAIL, "note": "nul \x00 byte"}))
    output = console_log.getvalue()
    assert "DataError" in output and "SQLSTATE" in output
    assert EMAIL not in output


def test_database_error_given_as_a_message_argument_is_withheld(console_log):
    error = psycopg.errors.UniqueViolation(
        'duplicate key value violates unique constraint "customers_customer_email_key"\n'
        f"DETAIL:  Key (email)=({EMAIL}) already exists.")
    logging.getLogger("crm_console").error("saving failed: %s (%r)", error, error)
    output = console_log.getvalue()
    assert "saving failed" in output and "withheld" in output
    assert EMAIL not in output


def test_other_records_pass_unchanged(console_log):
    logging.getLogger("crm_console").warning("campaign %s: %s", 7, "paused")
    assert "campaign 7: paused" in console_log.getvalue()


def test_a_celery_workers_handlers_withhold_database_error_text_too():
    from celery.signals import after_setup_logger

    import crm_console.celery  # noqa: F401 - connects the signal, as a worker does

    logger = logging.getLogger("test.celery.worker")
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))
    logger.propagate = False
    after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO, logfile=None,
                            format="%(message)s", colorize=False)
    error = psycopg.errors.NotNullViolation(f"DETAIL:  Failing row contains ({EMAIL}).")
    logger.error("Task failed: %r", error)
    assert EMAIL not in stream.getvalue()
