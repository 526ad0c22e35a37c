from django.urls import path

from crm_console.training import views

app_name = "training"
urlpatterns = [
    path("", views.run_list, name="run-list"),
    path("start/", views.run_start, name="run-start"),
    path("<int:pk>/", views.run_detail, name="run-detail"),
    path("<int:pk>/progress/", views.run_progress, name="run-progress"),
    path("<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("policies/", views.policy_list, name="policy-list"),
    path("policies/<int:pk>/", views.policy_detail, name="policy-detail"),
    path("policies/<int:pk>/promote/", views.policy_promote, name="policy-promote"),
    path("policies/<int:pk>/evaluate/", views.policy_evaluate, name="policy-evaluate"),
    path("policies/<int:pk>/shadow/", views.policy_shadow, name="policy-shadow"),
    path("policies/<int:pk>/trial/", views.trial_start, name="trial-start"),
    path("trials/<int:pk>/stop/", views.trial_stop, name="trial-stop"),
    path("trials/<int:pk>/promote/", views.trial_promote, name="trial-promote"),
]
