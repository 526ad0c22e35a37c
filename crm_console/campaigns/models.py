"""Campaigns, their action catalogue, reward weights and contact policies (caps).

Every invariant is checked here (field validators, `clean`, database constraints) so the admin,
the console's forms and the API refuse the same bad values with the same field-level message.
"""

from __future__ import annotations

import math
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from crm_console.campaigns.vocabulary import vocabulary


key_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,49}$",
    "Use 1-50 lowercase letters, digits, '_' or '-', starting with a letter or digit.",
)
"""What a channel, offer or send window key may be (agents.catalogue's keys)."""

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _every_day() -> list[int]:
    return list(range(7))


class Channel(models.Model):
    """Where a message goes, one of the workspace's own channels (agents.catalogue.Channel).

    The channels in id order lay out every per-channel array the console keeps (customer
    profiles, consent, the feature vector), so a channel is only ever appended: one that actions,
    caps, consent or decisions use is switched off, never deleted, and only the newest channel can
    be deleted at all (`campaigns.services.channel_delete`).
    """

    key = models.CharField(max_length=20, unique=True, validators=[key_validator],
                           help_text="Stable identifier the API and the logs carry, e.g. whatsapp.")
    label = models.CharField(max_length=80, help_text="What marketers read, e.g. WhatsApp.")
    cost = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="What one contact costs: the price every action on this channel starts from.",
    )
    consent_key = models.CharField(
        max_length=50, blank=True, validators=[key_validator],
        help_text="The consent a customer gives for it (e.g. whatsapp; channels may share one, "
                  "e.g. phone). Blank: the channel's own key.",
    )
    quiet_hours_apply = models.BooleanField(
        default=True, help_text="Quiet hours hold on this channel (off e.g. for in-app messages).")
    counts_toward_overall_cap = models.BooleanField(
        default=True, help_text="Its contacts count toward the contact policy's overall cap.")
    enabled = models.BooleanField(default=True, help_text="Switched-off channels take no new actions.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label

    @property
    def consent(self) -> str:
        """The consent key this channel needs."""
        return self.consent_key or self.key


class Offer(models.Model):
    """What a message offers, one of the workspace's own offers (agents.catalogue.Offer).

    A percent or amount off gives margin away by its value; the redemption cost is what one
    redeemed offer costs on top (shipping, the gift, the extra points). Offers are never deleted
    once an action uses them: they are switched off.
    """

    class Kind(models.TextChoices):
        NONE = "none", "No incentive (content)"
        PERCENT_OFF = "percent_off", "Percent off"
        AMOUNT_OFF = "amount_off", "Amount off"
        FREE_SHIPPING = "free_shipping", "Free shipping"
        GIFT = "gift", "Free gift"
        POINTS_MULTIPLIER = "points_multiplier", "Loyalty points multiplier"

    key = models.CharField(max_length=50, unique=True, validators=[key_validator],
                           help_text="Stable identifier the API and the logs carry, e.g. free_gift.")
    label = models.CharField(max_length=80, help_text="What marketers read, e.g. Free gift.")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NONE)
    value = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Percent for a percent off (15 = 15 %), the amount for an amount off, the "
                  "multiplier for loyalty points (2 = double points); 0 for the other kinds.",
    )
    redemption_cost = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="What one redeemed offer costs you on top of any discount (shipping, the gift).",
    )
    validity_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Days a customer can use the offer after reading it.",
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True, help_text="Switched-off offers take no new actions.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        value = self.value if self.value is not None else Decimal("0")
        errors = {}
        if self.kind == self.Kind.PERCENT_OFF and not Decimal("0") < value <= Decimal("100"):
            errors["value"] = "A percent off lies between 0 and 100 (e.g. 15 for 15 %)."
        elif self.kind == self.Kind.AMOUNT_OFF and value <= 0:
            errors["value"] = "An amount off needs an amount above 0."
        elif self.kind == self.Kind.POINTS_MULTIPLIER and value <= 1:
            errors["value"] = "A points multiplier is above 1 (2 = double points)."
        elif self.kind in (self.Kind.NONE, self.Kind.FREE_SHIPPING, self.Kind.GIFT) and value:
            errors["value"] = (f"A {self.get_kind_display().lower()} offer has no value; put "
                               "what it costs you in the redemption cost.")
        if errors:
            raise ValidationError(errors)


class SendWindow(models.Model):
    """When in the CUSTOMER's own local day a message goes out, on which weekdays
    (agents.catalogue.SendWindow): a message goes out at the window's start."""

    key = models.CharField(max_length=50, unique=True, validators=[key_validator],
                           help_text="Stable identifier the API and the logs carry, e.g. lunch.")
    label = models.CharField(max_length=80, help_text="What marketers read, e.g. Lunch 12:30-13:30.")
    start = models.TimeField(help_text="Local start in the customer's time zone.")
    end = models.TimeField(help_text="Local end, after the start (the same day).")
    days = models.JSONField(default=_every_day,
                            help_text="Weekdays it opens on: 0 = Monday ... 6 = Sunday.")
    enabled = models.BooleanField(default=True,
                                  help_text="Switched-off windows take no new actions.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start", "id"]

    def __str__(self) -> str:
        return self.label

    @property
    def start_hour(self) -> float:
        return self.start.hour + self.start.minute / 60.0

    @property
    def days_text(self) -> str:
        """"every day", "Monday-Friday", or the days by name."""
        days = sorted(self.days or [])
        if days == list(range(7)):
            return "every day"
        if days == list(range(5)):
            return "Monday-Friday"
        return ", ".join(WEEKDAYS[d] for d in days)

    @property
    def end_hour(self) -> float:
        return self.end.hour + self.end.minute / 60.0

    def clean(self) -> None:
        errors = {}
        if self.start is not None and self.end is not None and self.end <= self.start:
            errors["end"] = "The window must end after it starts (on the same day)."
        if self.start is not None and self.start.second or self.end is not None and self.end.second:
            errors["start"] = "Give whole minutes."
        days = self.days
        if not isinstance(days, list) or not days or any(
                isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            errors["days"] = "Choose at least one weekday."
        elif len(set(days)) != len(days):
            errors["days"] = "Each weekday once."
        if errors:
            raise ValidationError(errors)


def validate_finite(value: float) -> None:
    if value is None or not math.isfinite(value):
        raise ValidationError("Enter a finite number.", code="not_finite")


def validate_time_zone(value: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "%(value)s is not a time zone name (use e.g. Europe/London).",
            code="invalid_time_zone", params={"value": value},
        ) from None


HOUR_VALIDATORS = [MinValueValidator(0), MaxValueValidator(23)]


class ContactPolicy(models.Model):
    """Caps and quiet hours a compliance officer sets; campaigns refer to one.

    Caps per channel live in `ChannelCap` rows; the suppression list in `SuppressionEntry`.
    Quiet hours are in each customer's own time zone and wrap midnight when start > end
    (21 -> 8 means 21:00-08:00).
    """

    name = models.CharField(max_length=120, unique=True)
    overall_max_contacts = models.PositiveIntegerField(
        default=4, help_text="Most contacts on any channel within the overall window."
    )
    overall_window_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1)], help_text="Rolling window for the overall cap."
    )
    min_gap_hours = models.DecimalField(
        max_digits=6, decimal_places=1, default=Decimal("48.0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Minimum hours between two contacts on any channel.",
    )
    quiet_hours_start = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=HOUR_VALIDATORS,
        help_text="Hour (0-23, customer's local time) quiet hours begin.",
    )
    quiet_hours_end = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=HOUR_VALIDATORS,
        help_text="Hour (0-23, customer's local time) quiet hours end.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "contact policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(min_gap_hours__gte=0), name="contact_policy_min_gap_non_negative"
            ),
            models.CheckConstraint(
                condition=(Q(quiet_hours_start__isnull=True) & Q(quiet_hours_end__isnull=True))
                | (
                    Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False)
                    & ~Q(quiet_hours_start=models.F("quiet_hours_end"))
                ),
                name="contact_policy_quiet_hours_well_formed",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if (start is None) != (end is None):
            missing = "quiet_hours_end" if end is None else "quiet_hours_start"
            raise ValidationError(
                {missing: "Set both the start and the end of quiet hours, or neither."}
            )
        if start is not None and start == end:
            raise ValidationError(
                {"quiet_hours_end": "Quiet hours must end at a different hour than they start."}
            )

    @property
    def quiet_hours(self) -> tuple[int, int] | None:
        if self.quiet_hours_start is None or self.quiet_hours_end is None:
            return None
        return (self.quiet_hours_start, self.quiet_hours_end)

    def is_quiet_hour(self, hour: int) -> bool:
        """True when `hour` (customer's local time) falls in quiet hours, wrapping midnight."""
        if self.quiet_hours is None:
            return False
        start, end = self.quiet_hours
        if start < end:
            return start <= hour < end
        return hour >= start or hour < end


class ChannelCap(models.Model):
    """At most `max_contacts` on `channel` within a rolling `window_days`, at least
    `min_gap_hours` between two of its contacts; consent rule per channel."""

    contact_policy = models.ForeignKey(
        ContactPolicy, on_delete=models.CASCADE, related_name="channel_caps"
    )
    channel = models.CharField(max_length=20, help_text="A channel's key.")
    max_contacts = models.PositiveIntegerField(help_text="0 blocks the channel entirely.")
    window_days = models.PositiveIntegerField(default=7, validators=[MinValueValidator(1)])
    min_gap_hours = models.DecimalField(
        max_digits=6, decimal_places=1, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Minimum hours between two contacts on this channel (0: only the policy's gap).",
    )
    consent_required = models.BooleanField(
        default=True, help_text="Contact only customers who granted consent on this channel."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact_policy", "channel"], name="channel_cap_unique_per_policy",
                violation_error_message="This contact policy already has a cap for that channel.",
            ),
            models.CheckConstraint(condition=Q(window_days__gte=1), name="channel_cap_window_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_label}: {self.max_contacts} per {self.window_days} days"

    @property
    def channel_label(self) -> str:
        return vocabulary().channel_label(self.channel)


class SuppressionEntry(models.Model):
    """A customer who must never be contacted under this policy (do-not-contact list).

    Holds a keyed hash of the CRM id, never the id (campaigns.suppression): erasing a customer
    leaves no raw id here, and the same id imported again is still suppressed.
    """

    contact_policy = models.ForeignKey(
        ContactPolicy, on_delete=models.CASCADE, related_name="suppressions"
    )
    external_id_hash = models.CharField(
        max_length=64, help_text="HMAC-SHA256 of the CRM id (campaigns.suppression)."
    )
    reason = models.CharField(max_length=200, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "suppression entries"
        constraints = [
            models.UniqueConstraint(
                fields=["contact_policy", "external_id_hash"],
                name="suppression_hash_unique_per_policy",
                violation_error_message="This customer is already on the suppression list.",
            )
        ]

    def __str__(self) -> str:
        return f"Suppressed customer {self.fingerprint}"

    @property
    def fingerprint(self) -> str:
        """The first hex digits of the hash: tells entries apart on a page, names nobody."""
        return self.external_id_hash[:12]


class Campaign(models.Model):
    """A next-best-action programme: what the agent optimises, for whom, and under which caps."""

    class Objective(models.TextChoices):
        LONG_TERM_VALUE = "long_term_value", "Long-term customer value"
        RETENTION = "retention", "Retention"
        CONVERSION = "conversion", "Conversion"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    class ControlPolicy(models.TextChoices):
        RULE_BASED = "rule_based", "Rule-based (today's rules)"
        NO_CONTACT = "no_contact", "No contact"
        RANDOM = "random", "Random"

    class DecisionMode(models.TextChoices):
        SAMPLE = "sample", "Sample (explores; logs true propensities)"
        GREEDY = "greedy", "Greedy (best action only)"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    objective = models.CharField(
        max_length=30, choices=Objective.choices, default=Objective.LONG_TERM_VALUE
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    horizon_days = models.PositiveIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(730)],
        help_text="How far ahead customer value counts.",
    )
    discount_factor = models.FloatField(
        default=0.99, validators=[MinValueValidator(0.0), MaxValueValidator(1.0), validate_finite],
        help_text="Daily discount of future value (1 = no discounting).",
    )
    holdout_share = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.5"))],
        help_text="Share of customers kept in the control group (0 to 0.5).",
    )
    attribution_window_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text="Outcomes this many days after a decision are credited to it.",
    )
    control_policy = models.CharField(
        max_length=20, choices=ControlPolicy.choices, default=ControlPolicy.RULE_BASED
    )
    decision_mode = models.CharField(
        max_length=10, choices=DecisionMode.choices, default=DecisionMode.SAMPLE
    )
    exploration_share = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.050"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.5"))],
        help_text="Share of each sampled decision spread evenly over the allowed actions (0 to "
        "0.5), so every allowed action keeps a logged chance above zero and the next policy can "
        "be evaluated off-policy. Ignored in greedy mode and for the holdout.",
    )
    retention_guardrail_points = models.DecimalField(
        max_digits=4, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        verbose_name="Retention guardrail (points)",
        help_text="How many points of retention (customers still there at the horizon) a "
        "policy may lose to the control policy. Training holds each actor_critic policy to the "
        "control's rate of losing customers plus this; of the policies a run trains side by side "
        "it keeps only one within it on the same held-out simulated customers (if none manages "
        "it, the best is kept and the run says so); and a trial refuses a candidate that loses "
        "more on live customers. Blank: training in a customer model fitted from the "
        "campaign's logs still holds a policy to the control's rate (0 points), and otherwise "
        "the reward weights alone trade revenue against churn.",
    )
    time_zone = models.CharField(
        max_length=64, default="Europe/London", validators=[validate_time_zone],
        help_text="The campaign's own day (daily batch runs). Send windows are in each customer's "
        "local time.",
    )
    contact_policy = models.ForeignKey(
        ContactPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0) & Q(holdout_share__lte=Decimal("0.5")),
                name="campaign_holdout_share_in_range",
            ),
            models.CheckConstraint(
                condition=Q(discount_factor__gte=0) & Q(discount_factor__lte=1),
                name="campaign_discount_factor_in_range",
            ),
            models.CheckConstraint(
                condition=Q(exploration_share__gte=0) & Q(exploration_share__lte=Decimal("0.5")),
                name="campaign_exploration_share_in_range",
            ),
            models.CheckConstraint(
                condition=Q(retention_guardrail_points__isnull=True)
                | (Q(retention_guardrail_points__gte=0)
                   & Q(retention_guardrail_points__lte=Decimal("100"))),
                name="campaign_retention_guardrail_in_range",
            ),
        ]

    @property
    def retention_tolerance(self) -> float | None:
        """The retention guardrail as a share (1 point = 0.01); None when the campaign sets none."""
        points = self.retention_guardrail_points
        return None if points is None else float(points) / 100.0

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.status == self.Status.LIVE:
            errors = {}
            if self.contact_policy_id is None:
                errors["contact_policy"] = "A campaign needs a contact policy before it can go live."
            if self.pk is None or not self.actions.filter(enabled=True).exclude(
                channel=Action.NO_CONTACT_CHANNEL
            ).exists():
                errors["status"] = "A campaign needs at least one enabled action before it can go live."
            if errors:
                raise ValidationError(errors)


class Action(models.Model):
    """One entry of the catalogue: channel x offer x message variant x send window.

    Each campaign also has one built-in "no contact" action (channel `none`): leaving a customer
    alone is always a legal decision, and it is logged like any other.
    """

    NO_CONTACT_CHANNEL = "none"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="actions")
    channel = models.CharField(max_length=20, help_text="A channel's key, or none (no contact).")
    offer = models.CharField(max_length=50, blank=True, help_text="An offer's key.")
    variant = models.CharField(
        max_length=60, default="default", blank=True, help_text="Message variant (copy, template)."
    )
    send_window = models.CharField(max_length=50, blank=True, help_text="A send window's key.")
    cost = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))], help_text="Cost of one contact.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "channel", "offer", "variant", "send_window"],
                name="action_unique_in_catalogue",
                violation_error_message=(
                    "This campaign already has an action with that channel, offer, variant and "
                    "send window."
                ),
            ),
            models.CheckConstraint(condition=Q(cost__gte=0), name="action_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def is_no_contact(self) -> bool:
        return self.channel == self.NO_CONTACT_CHANNEL

    @property
    def channel_label(self) -> str:
        return "No contact" if self.is_no_contact else vocabulary().channel_label(self.channel)

    def get_channel_display(self) -> str:
        return self.channel_label

    @property
    def offer_label(self) -> str:
        return vocabulary().offer_label(self.offer) if self.offer else ""

    @property
    def send_window_label(self) -> str:
        return vocabulary().window_label(self.send_window) if self.send_window else ""

    @property
    def label(self) -> str:
        if self.is_no_contact:
            return "No contact"
        parts = [self.get_channel_display(), self.offer_label, self.send_window_label]
        if self.variant and self.variant != "default":
            parts.insert(2, self.variant)
        return " - ".join(parts)

    def clean(self) -> None:
        if self.is_no_contact:
            if self.offer or self.send_window:
                raise ValidationError("The no-contact action has no offer or send window.")
            if not self.enabled:
                raise ValidationError({"enabled": "No contact cannot be disabled."})
            return
        errors = {}
        channel = Channel.objects.filter(key=self.channel).first()
        if channel is None:
            errors["channel"] = f"There is no channel {self.channel!r}."
        elif not channel.enabled and self._adds("channel"):
            errors["channel"] = f"{channel.label} is switched off."
        if not self.offer:
            errors["offer"] = "Choose an offer."
        else:
            offer = Offer.objects.filter(key=self.offer).first()
            if offer is None:
                errors["offer"] = f"There is no offer {self.offer!r}."
            elif not offer.enabled and self._adds("offer"):
                errors["offer"] = f"{offer.label} is switched off."
        if not self.send_window:
            errors["send_window"] = "Choose a send window."
        else:
            window = SendWindow.objects.filter(key=self.send_window).first()
            if window is None:
                errors["send_window"] = f"There is no send window {self.send_window!r}."
            elif not window.enabled and self._adds("send_window"):
                errors["send_window"] = f"{window.label} is switched off."
        if errors:
            raise ValidationError(errors)

    def _adds(self, field: str) -> bool:
        """A new action, or one moved to this channel / offer / window (a switched-off one keeps its old
        actions: switching off stops new ones)."""
        if self.pk is None:
            return True
        return not Action.objects.filter(pk=self.pk, **{field: getattr(self, field)}).exists()


class RewardWeights(models.Model):
    """How outcomes turn into reward. Mirrors `agents.rewards.RewardWeights`.

    Revenue is per currency unit of net revenue (after the discount); unsubscribe and churn are
    penalties per event; contact_cost multiplies each action's cost.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="reward_weights")
    open = models.FloatField(default=0.0, validators=[validate_finite])
    click = models.FloatField(default=0.0, validators=[validate_finite])
    conversion = models.FloatField(default=0.0, validators=[validate_finite])
    revenue = models.FloatField(default=1.0, validators=[validate_finite])
    unsubscribe = models.FloatField(default=-20.0, validators=[validate_finite])
    churn = models.FloatField(default=-50.0, validators=[validate_finite])
    contact_cost = models.FloatField(default=-1.0, validators=[validate_finite])
    updated_at = models.DateTimeField(auto_now=True)

    WEIGHT_FIELDS = ("open", "click", "conversion", "revenue", "unsubscribe", "churn", "contact_cost")

    class Meta:
        verbose_name_plural = "reward weights"

    def __str__(self) -> str:
        return f"Reward weights of {self.campaign}"

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.WEIGHT_FIELDS}
