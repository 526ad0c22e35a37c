"""Policy versions, the decision audit log and each decision's explanation."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm_console.campaigns.models import Action, Campaign
from crm_console.customers.models import Customer

ALGORITHM_CHOICES = [
    ("actor_critic", "Actor-critic (PPO)"),
    ("dqn", "Double DQN"),
    ("q_learning", "Tabular Q-learning"),
    ("linucb", "LinUCB bandit"),
    ("thompson", "Thompson-sampling bandit"),
    ("epsilon_greedy", "Epsilon-greedy bandit"),
    ("softmax", "Softmax bandit"),
    ("random", "Random"),
    ("rule_based", "Rule-based"),
    ("supervised", "Supervised response model"),
]


class PolicyVersion(models.Model):
    """A trained policy for one campaign. At most one is live per campaign."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        SHADOW = "shadow", "Shadow (scores live traffic, does not act)"
        LIVE = "live", "Live"
        RETIRED = "retired", "Retired"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="policy_versions")
    version = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=30, choices=ALGORITHM_CHOICES)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CANDIDATE)
    artifact = models.BinaryField(
        help_text="The saved agent (agents.Agent.save), kept in the database so every web "
        "process and worker serves the same bytes."
    )
    artifact_sha256 = models.CharField(max_length=64)
    action_ids = models.JSONField(
        default=list, help_text="Catalogue action id for each of the agent's action indices."
    )
    feature_names = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, blank=True, help_text="Simulator KPIs at training time.")
    ope_report = models.JSONField(default=dict, blank=True, help_text="Off-policy evaluation.")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promotion_reason = models.TextField(blank=True)
    forced_promotion = models.BooleanField(default=False)

    class Meta:
        ordering = ["campaign", "-version"]
        permissions = [
            ("promote_policyversion", "Can promote a policy that passed the guardrail"),
            ("force_promote_policyversion", "Can force-promote past the guardrail, with a reason"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "version"], name="policy_version_unique"),
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(status="live"), name="one_live_policy_per_campaign",
                violation_error_message="This campaign already has a live policy.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} v{self.version} ({self.get_algorithm_display()})"


class PolicyTrial(models.Model):
    """A candidate deciding for a random share of a campaign's customers beside the live policy.

    What the logs cannot certify (a policy's effect over weeks), the two groups' priced decisions
    measure; `decisioning.promotion.trial_verdict` states when that lets the candidate go live.
    The candidate is in shadow while its trial runs (serving scores it for every customer)."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        PROMOTED = "promoted", "Promoted"
        STOPPED = "stopped", "Stopped"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="trials")
    candidate = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="trials")
    live = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="The version live when the trial started (empty: the control policy was).")
    share = models.DecimalField(
        max_digits=4, decimal_places=3,
        validators=[MinValueValidator(0.01), MaxValueValidator(0.5)],
        help_text="Share of the campaign's customers (outside the holdout) the candidate decides "
                  "for.")
    days = models.PositiveSmallIntegerField(
        default=28, validators=[MinValueValidator(1), MaxValueValidator(180)],
        help_text="How long the trial measures, set when it starts: its verdict is read on these "
                  "days only, once they have passed (a verdict read whenever it first looks good "
                  "would pass a candidate no better than the live policy far more often).")
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    started_at = models.DateTimeField()
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    end_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(outcome="running"),
                name="one_running_trial_per_campaign",
                violation_error_message="This campaign already runs a trial."),
        ]

    def __str__(self) -> str:
        return f"Trial of {self.candidate} on {self.share:.0%}"

    @property
    def baseline(self) -> str:
        """Who the candidate is compared with, in the verdict's words."""
        return "live" if self.live_id else "control"

    @property
    def measured_until(self) -> datetime:
        """The end of the days the verdict reads: the planned days, or the stop if earlier."""
        planned = self.started_at + timedelta(days=self.days)
        return planned if self.ended_at is None else min(planned, self.ended_at)


class Decision(models.Model):
    """One next-best-action decision: the audit record compliance reviews and OPE learns from."""

    class Status(models.TextChoices):
        DECIDED = "decided", "Decided"
        DELIVERED = "delivered", "Delivered"
        RELEASED = "released", "Released (not delivered; cap freed)"

    # no single-column indexes on campaign and customer: the (campaign, decided_at) and
    # (customer, decided_at) indexes below serve those lookups, and every decision pays per index
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="decisions",
                                 db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="decisions",
                                 db_index=False)
    policy_version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions",
        help_text="Empty when the control policy decided (holdout).",
    )
    policy_name = models.CharField(
        max_length=30, help_text="The algorithm that decided (the control policy for holdout)."
    )
    action = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="decisions")
    action_index = models.PositiveIntegerField()
    propensity = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Probability the deciding policy gave the chosen action.",
    )
    action_probabilities = models.JSONField(default=list, blank=True)
    features = models.JSONField(help_text="Snapshot of the state vector the policy saw.")
    action_mask = models.JSONField(help_text="Allowed (true) per action index.")
    mask_reasons = models.JSONField(
        default=dict, blank=True, help_text="Rule name -> the action indices it blocked (see decisioning.masks)."
    )
    holdout = models.BooleanField(default=False)
    greedy = models.BooleanField(default=False)
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DECIDED)
    decided_at = models.DateTimeField(db_index=True)
    send_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the message goes out: its send window's start in the customer's local "
        "time (agents.constraints.send_hours), replaced by the delivery receipt's time. Caps and "
        "the minimum gap count contacts at this time. Empty for no contact.",
    )
    reward = models.FloatField(null=True, blank=True, help_text="Attributed reward, once known.")
    reward_components = models.JSONField(default=dict, blank=True)
    attributed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [
            # attributed_at too: the dashboard's per-day fingerprints read only this index
            models.Index(fields=["campaign", "decided_at", "attributed_at"]),
            models.Index(fields=["customer", "decided_at"]),
            models.Index(fields=["customer", "send_at"]),  # the caps' read
            models.Index(fields=["campaign", "holdout"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(propensity__gt=0) & Q(propensity__lte=1),
                name="decision_propensity_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Decision #{self.pk}: {self.action.label}"


class Explanation(models.Model):
    """Why a decision was taken: SHAP values over the named features and a sentence."""

    decision = models.OneToOneField(Decision, on_delete=models.CASCADE, related_name="explanation")
    method = models.CharField(max_length=60)
    base_value = models.FloatField()
    explained_value = models.FloatField()
    shap_values = models.JSONField(help_text="Feature name -> signed contribution.")
    top_reasons = models.JSONField(default=list)
    runner_up = models.JSONField(default=dict, blank=True)
    masked_actions = models.JSONField(default=list, blank=True)
    sentence = models.TextField()
    computed_at = models.DateTimeField(auto_now_add=True)
    compute_ms = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return self.sentence[:80]


class HistoryImport(models.Model):
    """One upload of history files (decisioning.history_import), run by a Celery task; the page
    polls its progress and shows its report (refused rows with line, JSON path and why)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="history_imports")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    events_path = models.CharField(max_length=500)
    contacts_path = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=20, blank=True, help_text="The file being read.")
    lines_processed = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"History import #{self.pk} into {self.campaign}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class BatchRun(models.Model):
    """One batch campaign run: a segment decided on one day, split into chunks of customers by
    key range that workers on the `decisions` queue decide in parallel (decisioning.batch_runs).

    Its figures are the sums of its chunks', written when the last chunk finishes; the progress
    page reads the chunks meanwhile. A once-per-day run is unique per campaign and day, so two
    starts at the same moment (two beats, a double click) make one run.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FINISHED_WITH_ERRORS = "finished_with_errors", "Finished with errors"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="batch_runs")
    segment = models.JSONField(default=dict, blank=True,
                               help_text="Who is decided (training.selectors.customer_segment).")
    day = models.DateField(help_text="The day the batch is for (the workspace's local date).")
    once_per_day = models.BooleanField(default=False)
    chunk_size = models.PositiveIntegerField(default=1000)
    adapter = models.JSONField(default=dict, blank=True, help_text="Where decisions are handed.")
    explain = models.BooleanField(default=False)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.RUNNING)
    customers = models.PositiveIntegerField(default=0, help_text="Customers the segment matched.")
    chunks_total = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True,
                              help_text="Decisions, contacts, delivered, failed, released, chunks.")
    errors = models.JSONField(default=list, blank=True,
                              help_text="Failed chunks: key range, customers, stage, error.")
    resumed = models.PositiveIntegerField(default=0)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "day"], condition=Q(once_per_day=True),
                name="one_once_per_day_batch_run_per_campaign_and_day",
                violation_error_message="This campaign already has today's batch run."),
        ]

    def __str__(self) -> str:
        return f"Batch run #{self.pk} of {self.campaign} for {self.day}"

    @property
    def is_finished(self) -> bool:
        return self.status != self.Status.RUNNING


class BatchRunChunk(models.Model):
    """The customers of a batch run whose ids lie in [first_customer_id, last_customer_id].

    Decided in one transaction that also marks it decided, under its own row lock: a duplicated
    or redelivered chunk task waits for the first, then finds it decided and only hands the same
    decisions to the adapter (never decides again).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        DECIDED = "decided", "Decided, not yet delivered"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(BatchRun, on_delete=models.CASCADE, related_name="chunks",
                            db_index=False)  # (run, number) and (run, status) serve it
    number = models.PositiveIntegerField()
    first_customer_id = models.BigIntegerField()
    last_customer_id = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True,
                                      help_text="The decisions' time: finds them again.")
    attempts = models.PositiveIntegerField(default=0)
    customers = models.PositiveIntegerField(default=0)
    decisions = models.PositiveIntegerField(default=0)
    contacts = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Decisions the adapter refused.")
    released = models.PositiveIntegerField(default=0)
    undelivered_decision_ids = models.JSONField(
        default=list, blank=True, help_text="Decided but not yet taken by the adapter.")
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"],
                                               name="batch_run_chunk_number_unique")]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"Chunk {self.number} of batch run #{self.run_id}"
