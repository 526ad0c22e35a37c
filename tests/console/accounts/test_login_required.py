"""Every URL of the console needs a login: walk the URL conf as an anonymous visitor."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Views that must be reachable without a session: logging in, and API endpoints that
# authenticate with their own scheme (tokens + signatures) and answer 401/403 themselves.
PUBLIC = {"accounts:login"}


def iter_patterns(resolver: URLResolver, prefix: str = "", namespace: str | None = None):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            if ns == "admin":
                # the admin guards itself; its login is checked below
                continue
            yield from iter_patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield prefix + str(entry.pattern), name


def concrete_path(route: str) -> str:
    route = re.sub(r"<int:\w+>", "1", route)
    route = re.sub(r"<(?:str|slug|uuid|path):\w+>|<\w+>", "x", route)
    route = route.replace("^", "").replace("$", "")
    return "/" + route


ALL_ROUTES = sorted(set(iter_patterns(get_resolver())))
ROUTES = [(route, name) for route, name in ALL_ROUTES if name not in PUBLIC]


def test_url_conf_was_walked():
    assert len(ROUTES) >= 8
    assert {name for _, name in ALL_ROUTES} >= PUBLIC


@pytest.mark.parametrize(("route", "name"), ROUTES, ids=[r for r, _ in ROUTES])
def test_anonymous_visitor_is_refused(client, route, name):
    path = concrete_path(route)
    response = client.get(path)
    if path.startswith("/api/v1/"):
        assert response.status_code in (401, 403), path
    elif path.startswith("/integrations/sfmc/"):
        # Journey Builder's endpoints take no session: config.json is public (Marketing Cloud
        # fetches it), the calls are POSTs verified by their JWT (tests/console/sfmc)
        assert response.status_code in (404, 405), path
    else:
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path


def test_admin_requires_login(client):
    response = client.get("/admin/campaigns/campaign/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_admin_login_page_sends_to_console_login(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"


def test_login_page_is_styled_console_page(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"console/console.css" in response.content
    assert b"Log in" in response.content
