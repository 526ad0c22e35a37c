"""Journey Builder's JWTs: every call's body is an HS256 JWT signed with the installed package's
JWT signing secret ("Encode custom activities using JWT"). Verified with PyJWT: the signature,
the algorithm (HS256 only: "none" and the asymmetric ones are refused) and the expiry."""

from __future__ import annotations

from typing import Any

import jwt

ALGORITHMS = ["HS256"]
LEEWAY_SECONDS = 30
"""Clock difference tolerated on `exp` between Marketing Cloud and the console."""


class TokenRefused(Exception):
    """The body is not a JWT this activity's secret signed and that is still valid (401)."""


def token_claims(*, token: str, secret: str) -> dict[str, Any]:
    """The claims of `token` once its signature and expiry hold; TokenRefused saying why."""
    if not secret:
        raise TokenRefused("No JWT signing secret is set for this activity (ask an admin to paste "
                           "the installed package's JWT signing secret in the console).")
    token = token.strip()
    if not token:
        raise TokenRefused("The body must be the JWT Journey Builder signs (it was empty).")
    try:
        claims = jwt.decode(token, secret, algorithms=ALGORITHMS, leeway=LEEWAY_SECONDS,
                            options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenRefused("The JWT has expired.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRefused(f"The JWT lacks the '{exc.claim}' claim.") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("The JWT's signature does not match this activity's JWT signing "
                           "secret.") from None
    except jwt.InvalidAlgorithmError:
        raise TokenRefused("The JWT must be signed with HS256.") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"The body is not a valid JWT ({exc}).") from None
    if not isinstance(claims, dict):
        raise TokenRefused("The JWT's payload must be a JSON object.")
    return claims
