"""Journey Builder's endpoints for a campaign's custom split, exactly as config.json names them:
/integrations/sfmc/<campaign id>/config.json, execute, save, publish, validate, stop."""

from django.urls import path

from crm_console.sfmc import views

app_name = "sfmc"
urlpatterns = [
    path("<int:campaign_id>/config.json", views.config_json, name="config"),
    path("<int:campaign_id>/execute", views.execute, name="execute"),
    path("<int:campaign_id>/save", views.save, name="save"),
    path("<int:campaign_id>/publish", views.publish, name="publish"),
    path("<int:campaign_id>/validate", views.validate, name="validate"),
    path("<int:campaign_id>/stop", views.stop, name="stop"),
]
