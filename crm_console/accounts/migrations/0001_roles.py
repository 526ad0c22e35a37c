"""Create the Marketer, Compliance reviewer and Admin groups with their permissions."""

from django.db import migrations

ROLE_PERMISSIONS = {
    "Marketer": {
        "campaigns": {
            "campaign": ["add", "change"],
            "action": ["add", "change", "delete"],
            "rewardweights": ["add", "change"],
        },
        "training": {"trainingrun": ["add", "change"]},
        "decisioning": {"policyversion": ["promote"]},
    },
    "Compliance reviewer": {
        "campaigns": {
            "contactpolicy": ["add", "change"],
            "channelcap": ["add", "change", "delete"],
            "suppressionentry": ["add", "change", "delete"],
        },
        "customers": {"consent": ["add", "change"], "customer": ["change"]},
        "compliance": {"decisionreview": ["add"], "erasurerecord": ["add"]},
    },
}
PRODUCT_APPS = ("campaigns", "customers", "decisioning", "training", "compliance")


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; create them now so groups can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_all = Permission.objects.filter(
        content_type__app_label__in=PRODUCT_APPS, codename__startswith="view_"
    )
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*view_all)
        for app_label, models in grants.items():
            for model, verbs in models.items():
                codenames = [f"{verb}_{model}" for verb in verbs]
                group.permissions.add(*Permission.objects.filter(
                    content_type__app_label=app_label, content_type__model=model,
                    codename__in=codenames,
                ))
    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.add(*Permission.objects.filter(
        content_type__app_label__in=(*PRODUCT_APPS, "auth")
    ))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["Marketer", "Compliance reviewer", "Admin"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("campaigns", "0001_initial"),
        ("customers", "0002_initial"),
        ("decisioning", "0001_initial"),
        ("training", "0001_initial"),
        ("compliance", "0002_initial"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
