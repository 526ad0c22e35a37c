from django.urls import path

from crm_console.campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/clone/", views.campaign_clone, name="clone"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/catalogue/", views.catalogue, name="catalogue"),
    path("<int:pk>/catalogue/add/", views.action_add, name="action-add"),
    path("<int:pk>/catalogue/generate/", views.catalogue_generate, name="catalogue-generate"),
    path("<int:pk>/catalogue/<int:action_pk>/toggle/", views.action_toggle, name="action-toggle"),
    path("<int:pk>/reward-weights/", views.reward_weights_edit, name="reward-weights"),
    path("<int:pk>/reward-weights/preview/", views.reward_weights_preview, name="reward-weights-preview"),
    path("contact-policies/", views.contact_policy_list, name="contact-policy-list"),
    path("contact-policies/<int:pk>/edit/", views.contact_policy_edit, name="contact-policy-edit"),
    path("contact-policies/<int:pk>/suppressions/", views.contact_policy_suppressions,
         name="contact-policy-suppressions"),
]
