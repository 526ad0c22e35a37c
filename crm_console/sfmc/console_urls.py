"""The campaign's Marketing Cloud page in the console (under /campaigns/<id>/)."""

from django.urls import path

from crm_console.sfmc import views

app_name = "sfmc-console"
urlpatterns = [
    path("<int:pk>/marketing-cloud/", views.activity_page, name="activity"),
]
