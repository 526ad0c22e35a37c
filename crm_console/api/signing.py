"""Timestamped HMAC-SHA256 signatures of request bodies (the scheme Stripe and Slack use).

    X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The timestamp is inside the signed message, so a captured request cannot be replayed with a fresh
timestamp; requests more than `TOLERANCE_SECONDS` away from our clock (either way) are refused.
The same function signs the console's outgoing webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300
HEADER = "X-Signature"


class SignatureError(Exception):
    """The signature is missing, malformed, wrong or outside the time tolerance (the message says)."""


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-Signature value for `body` signed now (or at `timestamp`)."""
    t = int(time.time() if timestamp is None else timestamp)
    return f"t={t},v1={_digest(secret, t, body)}"


def _digest(secret: str, t: int | str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def signature_verify(*, secret: str, header: str | None, body: bytes, now: float | None = None,
                     tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise SignatureError unless `header` signs `body` with `secret` within the tolerance."""
    if not header:
        raise SignatureError(f"Missing {HEADER} header (t=<unix>,v1=<hex HMAC-SHA256>).")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value.strip())
    if "t" not in parts or "v1" not in parts:
        raise SignatureError(f"Malformed {HEADER} header: expected t=<unix>,v1=<hex>.")
    try:
        t = int(parts["t"][0])
    except ValueError:
        raise SignatureError(f"Malformed {HEADER} timestamp: t must be whole unix seconds.") from None
    now = time.time() if now is None else now
    skew = now - t
    if skew > tolerance:
        raise SignatureError(
            f"Stale signature: its timestamp is {int(skew)} s old (tolerance {tolerance} s)."
        )
    if skew < -tolerance:
        raise SignatureError(
            f"Signature timestamp is {int(-skew)} s in the future (tolerance {tolerance} s)."
        )
    expected = _digest(secret, parts["t"][0], body)
    # several v1 values let a sender sign with an old and a new secret during rotation
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in parts["v1"]):
        raise SignatureError("Signature does not match the body (check the secret and sign the "
                             "raw body exactly as sent).")
