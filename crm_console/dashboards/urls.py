from django.urls import path

from crm_console.dashboards import views

app_name = "dashboards"
urlpatterns = [
    path("", views.home, name="home"),
]
