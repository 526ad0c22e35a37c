"""REST API: versioned under /api/v1/, no trailing slashes; OpenAPI schema and Swagger UI.

DRF views opt out of Django's LoginRequiredMiddleware (they authenticate themselves), so the
schema and docs pages are wrapped in `login_required` explicitly: the API's shape is not public.
Swagger UI is the "split" view: its set-up script is a file of its own, not an inline script the
Content-Security-Policy would refuse.
"""

from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("schema/", login_required(SpectacularAPIView.as_view()), name="api-schema"),
    path(
        "docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("v1/", include("crm_console.api.v1_urls")),
]
