"""An unknown address shows the console's own 404 page, never Django's list of URL patterns."""

from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [True, False])
def test_unknown_address_shows_the_consoles_404_page(marketer_client, debug):
    with override_settings(DEBUG=debug):
        response = marketer_client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html and "Back to the dashboard" in html
    assert "URLconf" not in html and "api/v1" not in html


def test_a_missing_record_shows_the_consoles_404_page_while_debugging(marketer_client):
    with override_settings(DEBUG=True):
        response = marketer_client.get("/decisions/987654/")
    assert response.status_code == 404 and b"<h1>Not found</h1>" in response.content


def test_the_api_keeps_its_json_404(marketer_client):
    with override_settings(DEBUG=True):
        response = marketer_client.get("/api/v1/decisions/987654")
    assert response.status_code in (401, 403, 404)
    assert not response["Content-Type"].startswith("text/html") or b"Not found</h1>" not in response.content
