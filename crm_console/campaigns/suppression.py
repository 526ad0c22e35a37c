"""The suppression list's key for a CRM id: a keyed hash, so the list never holds the id itself.

HMAC-SHA256 with `settings.SUPPRESSION_HASH_KEY`. The same id always gives the same key, so a
customer who is erased and later imported again under the same CRM id is still suppressed, while
the list (or a copy of the database) names nobody: without the secret, guessed ids cannot be
checked against it. Changing the secret leaves every stored key unmatched, as if the list were
empty: keep it for the life of the data.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def suppression_hash(external_id: str) -> str:
    """The key stored for this CRM id (64 hex digits); surrounding spaces do not count."""
    return hmac.new(settings.SUPPRESSION_HASH_KEY.encode(), external_id.strip().encode(),
                    hashlib.sha256).hexdigest()
