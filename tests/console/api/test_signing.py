"""The webhook signature: HMAC-SHA256 of "<t>.<raw body>", +/-300 s tolerance at the exact boundary."""

from __future__ import annotations

import pytest

from crm_console.api.signing import SignatureError, signature_header, signature_verify

SECRET = "whsec-test"
BODY = b'{"batch": []}'
NOW = 1_800_000_000


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_signature_inside_tolerance_is_accepted(skew):
    header = signature_header(SECRET, BODY, timestamp=NOW - skew)
    signature_verify(secret=SECRET, header=header, body=BODY, now=NOW)


def test_signature_301_seconds_old_is_refused_as_stale():
    header = signature_header(SECRET, BODY, timestamp=NOW - 301)
    with pytest.raises(SignatureError, match="301 s old"):
        signature_verify(secret=SECRET, header=header, body=BODY, now=NOW)


def test_signature_301_seconds_ahead_is_refused_as_future():
    header = signature_header(SECRET, BODY, timestamp=NOW + 301)
    with pytest.raises(SignatureError, match="301 s in the future"):
        signature_verify(secret=SECRET, header=header, body=BODY, now=NOW)


def test_signature_of_another_body_is_refused():
    header = signature_header(SECRET, b'{"batch": [1]}', timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        signature_verify(secret=SECRET, header=header, body=BODY, now=NOW)


def test_signature_with_another_secret_is_refused():
    header = signature_header("another-secret", BODY, timestamp=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        signature_verify(secret=SECRET, header=header, body=BODY, now=NOW)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=soon,v1=abc", "t=1800000000"])
def test_missing_or_malformed_header_is_refused(header):
    with pytest.raises(SignatureError):
        signature_verify(secret=SECRET, header=header, body=BODY, now=NOW)
