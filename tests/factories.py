"""factory_boy factories for the console's models."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from crm_console.accounts.services import user_role_set
from crm_console.campaigns.models import (
    Action, Campaign, ChannelCap, ContactPolicy, RewardWeights, SuppressionEntry,
)
from crm_console.campaigns.suppression import suppression_hash
from crm_console.customers.models import Consent, Customer, Event

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, role_name, **kwargs):
        self.save()
        if create and role_name:  # staff status follows the role, as for every user
            user_role_set(user=self, role=role_name)


class ContactPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactPolicy

    name = factory.Sequence(lambda n: f"Contact policy {n}")
    overall_max_contacts = 4
    overall_window_days = 7
    min_gap_hours = Decimal("48.0")
    quiet_hours_start = 21
    quiet_hours_end = 8


class ChannelCapFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelCap

    contact_policy = factory.SubFactory(ContactPolicyFactory)
    channel = "email"
    max_contacts = 2
    window_days = 7


class SuppressionEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SuppressionEntry

    class Params:
        external_id = factory.Sequence(lambda n: f"suppressed-{n}")

    contact_policy = factory.SubFactory(ContactPolicyFactory)
    external_id_hash = factory.LazyAttribute(lambda entry: suppression_hash(entry.external_id))


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    contact_policy = factory.SubFactory(ContactPolicyFactory)


class ActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Action

    campaign = factory.SubFactory(CampaignFactory)
    channel = "email"
    offer = "content"
    send_window = "morning"
    cost = Decimal("0.02")


class RewardWeightsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RewardWeights

    campaign = factory.SubFactory(CampaignFactory)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n:05d}")
    email = factory.LazyAttribute(lambda c: f"{c.external_id}@example.com")
    time_zone = "Europe/London"


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    customer = factory.SubFactory(CustomerFactory)
    channel = "email"
    granted = True
    source = "signup form"
    recorded_at = factory.LazyFunction(timezone.now)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    message_id = factory.Sequence(lambda n: f"msg-{n}")
    customer = factory.SubFactory(CustomerFactory)
    type = "track"
    name = "Email Opened"
    timestamp = factory.LazyFunction(timezone.now)


# --------------------------------------------------------------------------- console pages
class PolicyVersionFactory(factory.django.DjangoModelFactory):
    """A stored policy without a real agent behind it (pages that never load the artifact)."""

    class Meta:
        model = "decisioning.PolicyVersion"

    campaign = factory.SubFactory(CampaignFactory)
    version = factory.Sequence(lambda n: n + 1)
    algorithm = "rule_based"
    status = "candidate"
    artifact = b"not-a-real-agent"
    artifact_sha256 = "0" * 64


def _two_action_catalogue(campaign: Campaign) -> Action:
    """Make sure the campaign has "no contact" (index 0) and an email action (index 1)."""
    Action.objects.get_or_create(campaign=campaign, channel=Action.NO_CONTACT_CHANNEL, offer="",
                                 variant="default", send_window="")
    return Action.objects.get_or_create(
        campaign=campaign, channel="email", offer="content", variant="default",
        send_window="morning", defaults={"cost": Decimal("0.02")})[0]


class DecisionFactory(factory.django.DjangoModelFactory):
    """A logged decision over a two-action catalogue: index 0 no contact, index 1 `action`."""

    class Meta:
        model = "decisioning.Decision"

    campaign = factory.SubFactory(CampaignFactory)
    customer = factory.SubFactory(CustomerFactory)
    action = factory.LazyAttribute(lambda d: _two_action_catalogue(d.campaign))
    policy_name = "rule_based"
    action_index = 1
    propensity = 0.9
    action_probabilities = [0.1, 0.9]
    features = factory.LazyFunction(lambda: [0.5] * 32)
    action_mask = [True, True]
    decided_at = factory.LazyFunction(timezone.now)
    # a contact goes out when decided unless a test says otherwise; no contact sends nothing
    send_at = factory.LazyAttribute(
        lambda d: None if d.action.channel == "none" else d.decided_at)


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "training.TrainingRun"

    campaign = factory.SubFactory(CampaignFactory)
    budget_steps = 2_000


class CustomerResponseModelFactory(factory.django.DjangoModelFactory):
    """A fitted model record (no artifact: for the rules around it, not for simulating)."""

    class Meta:
        model = "training.CustomerResponseModel"

    campaign = factory.SubFactory(CampaignFactory)
    status = "ready"
    training_rows = 5_000
    held_out_rows = 800
    within_tolerance = True
    fitted_at = factory.LazyFunction(timezone.now)
    held_out_since = factory.LazyFunction(timezone.now)
    validation = factory.LazyFunction(lambda: {
        "rows": 800, "totals": {"conversion_rate": {
            "observed": 0.05, "ci_low": 0.04, "ci_high": 0.06, "predicted": 0.09,
            "relative_miss": 0.8, "rows": 800, "events": 40, "enough_support": True,
            "within_tolerance": False}},
        "worst_miss": {"kpi": "conversion_rate", "relative_miss": 0.8}})
    action_ids = factory.LazyAttribute(
        lambda m: list(m.campaign.actions.order_by("id").values_list("pk", flat=True)))


class ExplanationFactory(factory.django.DjangoModelFactory):
    """A stored explanation in the shape decisioning.services logs (sentence made of features)."""

    class Meta:
        model = "decisioning.Explanation"

    decision = factory.SubFactory(DecisionFactory)
    method = "linear"
    base_value = 0.2
    explained_value = 0.9
    shap_values = factory.LazyFunction(lambda: {"email_open_rate": 0.5, "days_since_purchase": 0.2})
    top_reasons = factory.LazyFunction(lambda: ["opened 3 of the last 5 emails"])
    sentence = "Email chosen: opened 3 of the last 5 emails (+0.50)"


class DecisionReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "compliance.DecisionReview"

    decision = factory.SubFactory(DecisionFactory)
    reviewer = factory.SubFactory(UserFactory)
    verdict = "approved"
    note = "Looks right."


class ApiIntegrationFactory(factory.django.DjangoModelFactory):
    """An integration row without usable credentials (tests that never call the API with it)."""

    class Meta:
        model = "api.ApiIntegration"

    name = factory.Sequence(lambda n: f"CRM {n}")
    token_prefix = "test"
    token_hash = factory.Sequence(lambda n: f"{n:064d}")
    signing_secret = "not-a-real-secret"
    scopes = factory.LazyFunction(lambda: ["decisions:write"])


class IdempotentRequestFactory(factory.django.DjangoModelFactory):
    """A stored answer to a decision request sent with an Idempotency-Key."""

    class Meta:
        model = "api.IdempotentRequest"

    integration = factory.SubFactory(ApiIntegrationFactory)
    key = factory.Sequence(lambda n: f"key-{n}")
    operation = "decision_create"
    request_sha256 = "0" * 64
    status_code = 201
    response = factory.LazyFunction(dict)


# --------------------------------------------------------------------------- Marketing Cloud
class SfmcActivityFactory(factory.django.DjangoModelFactory):
    """A campaign's Journey Builder split with a known JWT signing secret."""

    class Meta:
        model = "sfmc.SfmcActivity"

    campaign = factory.SubFactory(CampaignFactory)
    name = "Next best action"
    jwt_signing_secret = "test-jwt-signing-secret-0123456789abcdef"


class SfmcCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "sfmc.SfmcCall"

    activity = factory.SubFactory(SfmcActivityFactory)
    endpoint = "execute"
    received_at = factory.LazyFunction(timezone.now)
    branch = "email"


class SfmcJourneyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "sfmc.SfmcJourney"

    activity = factory.SubFactory(SfmcActivityFactory)
    journey_id = factory.Sequence(lambda n: f"journey-{n}")
    activity_object_id = "activity-1"
    last_event = "save"
    last_event_at = factory.LazyFunction(timezone.now)
