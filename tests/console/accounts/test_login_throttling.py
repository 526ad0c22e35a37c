"""Repeated wrong passwords lock a username out from that address for a while (django-axes)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.utils import timezone

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def log_in(client, username: str, password: str, *, address: str = "203.0.113.7", next_url=""):
    return client.post(LOGIN, {"username": username, "password": password, "next": next_url},
                       REMOTE_ADDR=address)


def fail_until_locked(client, username: str, **kwargs) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, username, "wrong-password", **kwargs).status_code == 200
    # the last wrong password allowed already answers with the lockout
    assert log_in(client, username, "wrong-password", **kwargs).status_code == 429


def is_logged_in(client) -> bool:
    return client.get("/").status_code == 200


def test_right_password_is_refused_during_the_lockout_with_the_reason(client, marketer):
    fail_until_locked(client, "marketer")
    response = log_in(client, "marketer", PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert f"locked for {int(settings.AXES_COOLOFF_TIME.total_seconds()) // 60} minutes" in page
    assert "not even the right one" in page
    assert not is_logged_in(client)


def test_fewer_wrong_passwords_than_the_limit_do_not_lock(client, marketer):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "marketer", "wrong-password")
    assert log_in(client, "marketer", PASSWORD).status_code == 302
    assert is_logged_in(client)


def test_a_successful_log_in_clears_the_count(client, marketer):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "marketer", "wrong-password")
    log_in(client, "marketer", PASSWORD)
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "marketer", "wrong-password")
    assert log_in(client, "marketer", PASSWORD).status_code == 302


def test_the_lock_holds_only_for_that_address(client, marketer):
    """A stranger's wrong guesses cannot lock the marketer out from the marketer's own desk."""
    fail_until_locked(client, "marketer", address="198.51.100.66")
    assert log_in(client, "marketer", PASSWORD, address="203.0.113.7").status_code == 302


def test_the_lock_ends_after_the_cool_off(client, marketer):
    fail_until_locked(client, "marketer")
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert log_in(client, "marketer", PASSWORD).status_code == 302


def test_the_admin_log_in_is_locked_out_too(client, admin_user):
    """The admin has no log-in page of its own: /admin/login/ is the console's, locked alike."""
    assert client.get("/admin/login/?next=/admin/")["Location"].startswith(LOGIN)
    fail_until_locked(client, "admin", next_url="/admin/")
    assert log_in(client, "admin", PASSWORD, next_url="/admin/").status_code == 429
    assert client.get("/admin/").status_code == 302  # still sent to log in
