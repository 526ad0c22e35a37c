"""The landing dashboard."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm_console.campaigns.selectors import campaign_list
from crm_console.dashboards import selectors


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/home.html", {
        "campaigns": campaign_list(), "totals": selectors.workspace_totals(),
    })
