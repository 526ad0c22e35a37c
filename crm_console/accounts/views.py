"""Account pages beyond Django's own login and logout views."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm_console.accounts.forms import ConsoleLoginForm


def login_locked_out(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """django-axes' answer to a log-in from a locked-out username and address (429): the login
    page again, saying why the log-in was refused - whatever password was typed - and for how
    long, so the right password is not taken for a wrong one."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    lockout = (f"Log-in is locked for {minutes} minutes: {settings.AXES_FAILURE_LIMIT} wrong "
               f"passwords were typed for this username from your address. Until then no "
               f"password is accepted, not even the right one. Try again later, or ask an admin "
               f"to lift the lock.")
    return render(request, "accounts/login.html", {
        "form": ConsoleLoginForm(request, initial={"username": username}),
        "lockout": lockout, "next": request.POST.get("next", ""),
    }, status=429)
