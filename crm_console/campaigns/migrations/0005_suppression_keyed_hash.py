"""The suppression list keeps a keyed hash of each CRM id instead of the id (campaigns.suppression).

Existing rows are hashed with settings.SUPPRESSION_HASH_KEY, then the raw ids are dropped. Going
back cannot bring them back: the old column then holds the hash, which matches no customer.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import migrations, models


def _hash(external_id: str) -> str:
    # a frozen copy of campaigns.suppression.suppression_hash (migrations must not import code
    # that later changes)
    return hmac.new(settings.SUPPRESSION_HASH_KEY.encode(), external_id.strip().encode(),
                    hashlib.sha256).hexdigest()


def hash_existing(apps, schema_editor):
    SuppressionEntry = apps.get_model("campaigns", "SuppressionEntry")
    seen = set()
    for entry in SuppressionEntry.objects.order_by("added_at", "id"):
        key = (entry.contact_policy_id, _hash(entry.external_id))
        if key in seen:  # "c-1" and "c-1 " were two rows; they are one customer
            entry.delete()
            continue
        seen.add(key)
        entry.external_id_hash = key[1]
        entry.save(update_fields=["external_id_hash"])


def keep_hash_as_id(apps, schema_editor):
    SuppressionEntry = apps.get_model("campaigns", "SuppressionEntry")
    SuppressionEntry.objects.update(external_id=models.F("external_id_hash"))


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0004_offers_and_send_windows_as_records"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="suppressionentry",
            name="suppression_unique_per_policy",
        ),
        migrations.AddField(
            model_name="suppressionentry",
            name="external_id_hash",
            field=models.CharField(
                default="", help_text="HMAC-SHA256 of the CRM id (campaigns.suppression).",
                max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(hash_existing, keep_hash_as_id),
        migrations.RemoveField(
            model_name="suppressionentry",
            name="external_id",
        ),
        migrations.AddConstraint(
            model_name="suppressionentry",
            constraint=models.UniqueConstraint(
                fields=("contact_policy", "external_id_hash"),
                name="suppression_hash_unique_per_policy",
                violation_error_message="This customer is already on the suppression list."),
        ),
    ]
