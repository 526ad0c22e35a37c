"""URL map: console pages, the admin, and the versioned REST API with its OpenAPI docs."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", include("crm_console.dashboards.urls")),
    path("accounts/", include("crm_console.accounts.urls")),
    path("campaigns/", include("crm_console.campaigns.urls")),
    path("campaigns/", include("crm_console.sfmc.console_urls")),
    path("campaigns/", include("crm_console.training.campaign_urls")),
    path("customers/", include("crm_console.customers.urls")),
    path("decisions/", include("crm_console.decisioning.urls")),
    path("training/", include("crm_console.training.urls")),
    path("compliance/", include("crm_console.compliance.urls")),
    # one styled login for the whole console, the admin included
    path(
        "admin/login/",
        login_not_required(RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
    ),
    path("admin/", admin.site.urls),
    path("api/", include("crm_console.api.urls")),
    # Marketing Cloud Journey Builder's custom split (public, JWT-verified: crm_console.sfmc)
    path("integrations/sfmc/", include("crm_console.sfmc.urls")),
]

# under /api/ a 404 or 500 answers the documented error JSON, not an HTML page
handler404 = "crm_console.api.errors.not_found"
handler500 = "crm_console.api.errors.server_error"
