"""The console's own 404 page, also while developing (`make run` runs with DJANGO_DEBUG=true).

With DEBUG on, Django answers an unknown address with its technical 404 page, which lists every
URL pattern of the project: a marketer opening a stale bookmark should read the console's page
instead. The API keeps its JSON answers; with DEBUG off Django renders templates/404.html itself.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class ConsoleNotFoundMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (settings.DEBUG and response.status_code == 404
                and response.get("Content-Type", "").startswith("text/html")
                and not request.path.startswith("/api/")):
            return render(request, "404.html", status=404)
        return response
