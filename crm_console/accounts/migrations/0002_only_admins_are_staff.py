"""Only admins are staff: marketers and reviewers lose the staff status that opened the admin."""

from django.conf import settings
from django.db import migrations


def unstaff_non_admins(apps, schema_editor):
    app_label, model_name = settings.AUTH_USER_MODEL.split(".")
    User = apps.get_model(app_label, model_name)
    (User.objects.filter(is_staff=True, is_superuser=False).exclude(groups__name="Admin")
     .update(is_staff=False))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]
    operations = [migrations.RunPython(unstaff_non_admins, migrations.RunPython.noop)]
