from django.urls import path

from crm_console.dashboards import views

app_name = "dashboards"
urlpatterns = [
    path("", views.home, name="home"),
    path("assets/plotly.min.js", views.plotly_js, name="plotly-js"),
]
