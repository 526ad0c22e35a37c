"""Operations of API version 1. Each path has no trailing slash: a CRM must never get a redirect."""

from django.urls import path

from crm_console.api import views

app_name = "api-v1"
urlpatterns = [
    path("campaigns", views.CampaignListApi.as_view(), name="campaign-list"),
    path("events", views.EventBatchApi.as_view(), name="events"),
    path("decisions", views.DecisionCreateApi.as_view(), name="decision-create"),
    path("decisions/batch", views.DecisionBatchApi.as_view(), name="decision-batch"),
    path("decisions/<int:decision_id>", views.DecisionStatusApi.as_view(), name="decision-status"),
    path("decisions/<int:decision_id>/release", views.DecisionReleaseApi.as_view(),
         name="decision-release"),
]
