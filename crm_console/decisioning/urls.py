from django.urls import path

from crm_console.decisioning import views

app_name = "decisioning"
urlpatterns = [
    path("", views.decision_list, name="list"),
    path("<int:pk>/", views.decision_detail, name="detail"),
]
