"""The campaign's customer-response model pages (under /campaigns/<id>/)."""

from django.urls import path

from crm_console.training import customer_model_views as views

app_name = "customer-model"
urlpatterns = [
    path("<int:campaign_id>/customer-model/", views.model_page, name="page"),
    path("<int:campaign_id>/customer-model/fit/", views.model_fit, name="fit"),
    path("<int:campaign_id>/customer-model/<int:pk>/progress/", views.model_progress,
         name="progress"),
    path("<int:campaign_id>/customer-model/<int:pk>/override/", views.model_override,
         name="override"),
    path("<int:campaign_id>/customer-model/what-if/", views.what_if_start, name="what-if-start"),
    path("<int:campaign_id>/customer-model/what-if/<int:pk>/", views.what_if_detail,
         name="what-if"),
]
