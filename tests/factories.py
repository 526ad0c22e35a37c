"""factory_boy factories for the console's models."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from crm_console.campaigns.models import (
    Action, Campaign, ChannelCap, ContactPolicy, RewardWeights, SuppressionEntry,
)
from crm_console.customers.models import Consent, Customer, Event

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, role_name, **kwargs):
        if create and role_name:
            self.groups.add(Group.objects.get(name=role_name))
        self.save()


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

    contact_policy = factory.SubFactory(ContactPolicyFactory)
    external_id = factory.Sequence(lambda n: f"suppressed-{n}")


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
