"""Operations of API version 1. Each path has no trailing slash: a CRM must never get a redirect."""

from django.urls import path

from crm_console.api import views

app_name = "api-v1"
urlpatterns = [
    path("campaigns", views.CampaignListApi.as_view(), name="campaign-list"),
]
