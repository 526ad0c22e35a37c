from django.urls import path

from crm_console.compliance import views

app_name = "compliance"
urlpatterns = [
    path("reviews/", views.review_queue, name="review-queue"),
    path("reviews/<int:pk>/", views.review_create, name="review"),
    path("audit/", views.audit_log, name="audit-log"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("subject-requests/", views.subject_requests, name="subject-requests"),
    path("subject-requests/<int:pk>/export.json", views.customer_export, name="customer-export"),
    path("subject-requests/<int:pk>/erase/", views.customer_erase, name="customer-erase"),
]
