from django.urls import path

from crm_console.campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("contact-policies/", views.contact_policy_list, name="contact-policy-list"),
    path("contact-policies/<int:pk>/edit/", views.contact_policy_edit, name="contact-policy-edit"),
]
