from django.urls import path

from crm_console.campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("import/", views.campaign_file_import, name="import"),
    path("<int:pk>/campaign-file/", views.campaign_file_download, name="campaign-file"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/clone/", views.campaign_clone, name="clone"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/catalogue/", views.catalogue, name="catalogue"),
    path("<int:pk>/catalogue/add/", views.action_add, name="action-add"),
    path("<int:pk>/catalogue/generate/", views.catalogue_generate, name="catalogue-generate"),
    path("<int:pk>/catalogue/<int:action_pk>/toggle/", views.action_toggle, name="action-toggle"),
    path("<int:pk>/reward-weights/", views.reward_weights_edit, name="reward-weights"),
    path("<int:pk>/reward-weights/preview/", views.reward_weights_preview, name="reward-weights-preview"),
    path("vocabulary/", views.vocabulary, name="vocabulary"),
    path("channels/new/", views.channel_edit, name="channel-new"),
    path("channels/<int:channel_pk>/", views.channel_edit, name="channel-edit"),
    path("channels/<int:channel_pk>/delete/", views.channel_delete, name="channel-delete"),
    path("offers/new/", views.offer_edit, name="offer-new"),
    path("offers/<int:offer_pk>/", views.offer_edit, name="offer-edit"),
    path("offers/<int:offer_pk>/delete/", views.offer_delete, name="offer-delete"),
    path("send-windows/new/", views.send_window_edit, name="send-window-new"),
    path("send-windows/<int:window_pk>/", views.send_window_edit, name="send-window-edit"),
    path("send-windows/<int:window_pk>/delete/", views.send_window_delete,
         name="send-window-delete"),
    path("contact-policies/", views.contact_policy_list, name="contact-policy-list"),
    path("contact-policies/<int:pk>/edit/", views.contact_policy_edit, name="contact-policy-edit"),
    path("contact-policies/<int:pk>/suppressions/", views.contact_policy_suppressions,
         name="contact-policy-suppressions"),
]
