"""Journey Builder as the tests play it: JWTs signed by PyJWT, posted as Journey Builder posts
them (the bare token as the body, Content-Type application/jwt)."""

from __future__ import annotations

import time
from typing import Any

import jwt

SECRET = "test-jwt-signing-secret-0123456789abcdef"
JWT_CONTENT_TYPE = "application/jwt"


def execute_claims(contact_key: str | None = "c1", *, instance: str = "inst-1",
                   in_arguments: list[dict] | None = None, **extra: Any) -> dict[str, Any]:
    """The claims Journey Builder signs for one contact reaching the split."""
    if in_arguments is None:
        in_arguments = [{"contactKey": contact_key}]
    now = int(time.time())
    claims = {
        "inArguments": in_arguments, "outArguments": [],
        "activityObjectID": "5a1b0c2d-activity", "journeyId": "9f8e7d6c-journey",
        "activityId": "5a1b0c2d-activity", "definitionInstanceId": "defn-instance-1",
        "activityInstanceId": instance, "keyValue": contact_key, "mode": 0,
        "iat": now, "exp": now + 300,
    }
    claims.update(extra)
    return claims


def lifecycle_claims(**extra: Any) -> dict[str, Any]:
    """What save / validate / publish / stop carry."""
    now = int(time.time())
    claims = {"activityObjectID": "5a1b0c2d-activity", "interactionId": "9f8e7d6c-journey",
              "originalDefinitionId": "orig-defn-1", "interactionKey": "welcome-journey",
              "interactionVersion": "3", "iat": now, "exp": now + 300}
    claims.update(extra)
    return claims


def sign(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def post_jwt(client, path: str, token: str | bytes):
    body = token.encode() if isinstance(token, str) else token
    return client.generic("POST", path, body, content_type=JWT_CONTENT_TYPE)


def url(campaign_id: int, endpoint: str) -> str:
    return f"/integrations/sfmc/{campaign_id}/{endpoint}"
