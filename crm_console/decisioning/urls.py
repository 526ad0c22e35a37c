from django.urls import path

from crm_console.decisioning import views

app_name = "decisioning"
urlpatterns = [
    path("", views.decision_list, name="list"),
    path("<int:pk>/", views.decision_detail, name="detail"),
    path("import/", views.history_import_page, name="history-import"),
    path("import/<int:pk>/", views.history_import_detail, name="history-import-detail"),
    path("import/<int:pk>/progress/", views.history_import_progress,
         name="history-import-progress"),
    path("batch-runs/", views.batch_run_list, name="batch-run-list"),
    path("batch-runs/start/", views.batch_run_start_page, name="batch-run-start"),
    path("batch-runs/<int:pk>/", views.batch_run_detail, name="batch-run-detail"),
    path("batch-runs/<int:pk>/progress/", views.batch_run_progress, name="batch-run-progress"),
    path("batch-runs/<int:pk>/resume/", views.batch_run_resume, name="batch-run-resume"),
]
