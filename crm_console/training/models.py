"""Training runs: what the console's progress bar and learning curves read."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from crm_console.campaigns.models import Campaign
from agents.population import MAX_SIZE as POPULATION_MAX_SIZE
from crm_console.decisioning.models import ALGORITHM_CHOICES, PolicyVersion


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="training_runs")
    algorithm = models.CharField(max_length=30, choices=ALGORITHM_CHOICES, default="actor_critic")
    budget_steps = models.PositiveIntegerField(
        default=200_000, validators=[MinValueValidator(1_000), MaxValueValidator(50_000_000)],
        help_text="Simulated customer-days to train on.",
    )
    warm_start = models.BooleanField(
        default=True, help_text="Pre-train on the campaign's logged decisions first."
    )
    seed = models.PositiveIntegerField(default=0)
    population_size = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(POPULATION_MAX_SIZE)],
        help_text="Policies trained side by side with different seeds, each a task on the "
                  "training queue; the one with the highest return on held-out simulated "
                  "customers is kept.",
    )
    population_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="members",
        help_text="The run this one is a member of (members make no policy version themselves).",
    )
    member_artifact = models.BinaryField(
        null=True, blank=True, editable=False,
        help_text="A finished member's trained policy, until its run chooses one.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0), MaxValueValidator(1)])
    current_return = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    learning_curve = models.JSONField(default=dict, blank=True, help_text="{steps: [], returns: []}")
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=100, blank=True)
    policy_version = models.OneToOneField(
        PolicyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Training run #{self.pk} ({self.get_algorithm_display()}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_member(self) -> bool:
        return self.population_of_id is not None

    @property
    def is_population(self) -> bool:
        """A run whose policy is chosen among its members (it trains none itself)."""
        return self.population_size > 1 and not self.is_member


class CustomerResponseModel(models.Model):
    """A campaign's customer-response model: fitted from its own logged decisions and their
    attributed outcomes (agents.response_model), validated on the most recent days it did not see.

    A model that misses the observed KPIs by more than the tolerance is kept but not trained in
    until a marketer overrides it with a written reason (audited).
    """

    class Status(models.TextChoices):
        FITTING = "fitting", "Fitting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="response_models")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.FITTING)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0), MaxValueValidator(1)])
    phase = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True, help_text="Why fitting failed, in words.")
    training_rows = models.PositiveIntegerField(default=0, help_text="Logged decisions fitted on.")
    held_out_rows = models.PositiveIntegerField(default=0, help_text="Recent decisions held out.")
    held_out_since = models.DateTimeField(null=True, blank=True)
    held_out_days = models.PositiveIntegerField(default=14)
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    action_ids = models.JSONField(default=list, blank=True,
                                  help_text="Campaign Action pks in the model's action order.")
    validation = models.JSONField(default=dict, blank=True,
                                  help_text="Predicted vs observed on the held-out days.")
    within_tolerance = models.BooleanField(default=False)
    tolerance = models.FloatField(default=0.10)
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    fitted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Customer-response model #{self.pk} ({self.status})"

    @property
    def trainable(self) -> bool:
        """Fitted, and either validated or overridden with a reason."""
        return self.status == self.Status.READY and (self.within_tolerance
                                                     or bool(self.override_reason))


class WhatIfScenario(models.Model):
    """A named "what would happen if ..." on a campaign: a cap, reward weights or actions changed,
    answered in its fitted customer-response model next to today's settings (paired, with CIs)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="what_ifs")
    response_model = models.ForeignKey(CustomerResponseModel, on_delete=models.CASCADE,
                                       related_name="what_ifs")
    name = models.CharField(max_length=120)
    changes = models.JSONField(help_text="reward_weights, channel_caps, actions_enabled.")
    retrain = models.BooleanField(
        default=False, help_text="Train a new policy under the changes (else today's policy "
                                 "is replayed under them).")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0), MaxValueValidator(1)])
    phase = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"],
                                               name="what_if_name_unique_per_campaign")]

    def __str__(self) -> str:
        return f"What if {self.name}"
