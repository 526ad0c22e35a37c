"""The outcome events the console understands (Segment track names) and what each one means.

Any other event name is kept as a generic event: stored, never dropped, but it changes no profile
counter and earns no reward.
"""

from __future__ import annotations

MESSAGE_OPENED = "Message Opened"
LINK_CLICKED = "Link Clicked"
ORDER_COMPLETED = "Order Completed"
UNSUBSCRIBED = "Unsubscribed"
CONSENT_CHANGED = "Consent Changed"
CUSTOMER_CHURNED = "Customer Churned"
DELIVERY_FAILED = "Delivery Failed"
MESSAGE_DELIVERED = "Message Delivered"

# Segment's e-commerce and email spec names that mean the same thing
ALIASES = {
    "Email Opened": MESSAGE_OPENED,
    "Push Notification Opened": MESSAGE_OPENED,
    "Email Link Clicked": LINK_CLICKED,
    "Push Notification Tapped": LINK_CLICKED,
    "Email Unsubscribed": UNSUBSCRIBED,
    "Message Bounced": DELIVERY_FAILED,
    "Email Bounced": DELIVERY_FAILED,
    "Email Delivered": MESSAGE_DELIVERED,
    "Push Notification Delivered": MESSAGE_DELIVERED,
}

OUTCOME_EVENTS = frozenset({
    MESSAGE_OPENED, LINK_CLICKED, ORDER_COMPLETED, UNSUBSCRIBED, CUSTOMER_CHURNED,
})
"""Events that are attributed to a decision and count towards its reward."""


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)
