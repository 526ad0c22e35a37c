"""Trials: a candidate decides for a random share of a campaign's customers beside the live
policy, and goes live only on what the two groups did (`promotion.trial_verdict`).

Starting one puts the candidate in shadow (serving scores it for every customer and lets it
decide for the customers `holdout.in_trial` draws); stopping one sends it back to the candidates;
a promotion of any version ends it (`promotion._trials_close`). Once a trial's days and the
campaign's attribution window have passed, `trials_conclude` (a beat entry) stops it if its
verdict refuses: a forgotten trial does not leave a candidate that did worse deciding for its
share of the customers. One that passes keeps running until a marketer promotes or stops it.
Every change is atomic and written to the audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from crm_console.campaigns.models import Campaign
from crm_console.compliance.services import audit_record
from crm_console.dashboards.selectors import trial_evidence_for
from crm_console.decisioning.models import PolicyTrial, PolicyVersion
from crm_console.decisioning.attribution import decisions_attribute
from crm_console.decisioning.promotion import (
    PROMOTE_PERMISSION, current_live_version, policy_version_promote_on_trial, trial_check,
)

MIN_SHARE, MAX_SHARE = Decimal("0.01"), Decimal("0.5")
"""A trial's group: large enough to measure, never the majority of the customers."""
MAX_DAYS = 180


def _check_permission(user: AbstractBaseUser | None) -> None:
    if user is not None and not user.has_perm(PROMOTE_PERMISSION):
        raise PermissionDenied("You may not run trials.")


def _share_checked(share: Decimal | float | str) -> Decimal:
    try:
        value = Decimal(str(share))
    except (InvalidOperation, ValueError):
        raise ValidationError({"share": f"The share must be a number, got {share!r}."}) from None
    if not value.is_finite() or not MIN_SHARE <= value <= MAX_SHARE:
        raise ValidationError({"share": f"The share must be between {MIN_SHARE:.0%} and "
                                        f"{MAX_SHARE:.0%} of the customers, got {value}."})
    if value != value.quantize(Decimal("0.001")):
        raise ValidationError({"share": "Give the share to a tenth of a percent at most."})
    return value


def _days_checked(days: int) -> int:
    least = int(settings.TRIAL_MIN_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not least <= days <= MAX_DAYS:
        raise ValidationError({"days": f"A trial measures between {least} and {MAX_DAYS} whole "
                                       f"days (the weeks after a contact count), got {days!r}."})
    return days


@transaction.atomic
def trial_start(*, candidate: PolicyVersion, share: Decimal | float | str, days: int = 28,
                started_by: AbstractBaseUser | None) -> PolicyTrial:
    """Let `candidate` decide for `share` of the campaign's customers (outside the holdout); its
    verdict is read on the first `days` days, once they have passed."""
    _check_permission(started_by)
    share, days = _share_checked(share), _days_checked(days)
    Campaign.objects.select_for_update().get(pk=candidate.campaign_id)
    version = PolicyVersion.objects.select_for_update().get(pk=candidate.pk)
    if version.status not in (PolicyVersion.Status.CANDIDATE, PolicyVersion.Status.SHADOW):
        raise ValidationError({"status": f"Only a candidate can go on trial; this version is "
                                         f"{version.get_status_display().lower()}."})
    if PolicyTrial.objects.filter(campaign_id=version.campaign_id,
                                  outcome=PolicyTrial.Outcome.RUNNING).exists():
        raise ValidationError({"status": "This campaign already runs a trial: stop it first."})
    for other in PolicyVersion.objects.select_for_update().filter(
            campaign_id=version.campaign_id, status=PolicyVersion.Status.SHADOW
    ).exclude(pk=version.pk):
        other.status = PolicyVersion.Status.CANDIDATE
        other.save(update_fields=["status"])
        audit_record(actor=started_by, verb="policy_version.shadow_ended", target=other)
    version.status = PolicyVersion.Status.SHADOW
    version.save(update_fields=["status"])
    trial = PolicyTrial.objects.create(
        campaign_id=version.campaign_id, candidate=version,
        live=current_live_version(campaign=version.campaign), share=share, days=days,
        started_at=timezone.now(), started_by=started_by)
    audit_record(actor=started_by, verb="policy_trial.started", target=trial,
                 details={"candidate": version.pk, "live": trial.live_id, "share": float(share),
                          "days": days})
    return trial


@transaction.atomic
def trial_stop(*, trial: PolicyTrial, stopped_by: AbstractBaseUser | None,
               reason: str = "") -> PolicyTrial:
    """End a running trial without promoting: its candidate stops deciding and scoring."""
    _check_permission(stopped_by)
    trial = PolicyTrial.objects.select_for_update().get(pk=trial.pk)
    if trial.outcome != PolicyTrial.Outcome.RUNNING:
        raise ValidationError({"trial": f"This trial is already {trial.outcome}."})
    trial.outcome = PolicyTrial.Outcome.STOPPED
    trial.ended_at, trial.ended_by = timezone.now(), stopped_by
    trial.end_reason = (reason or "").strip() or "stopped"
    trial.save(update_fields=["outcome", "ended_at", "ended_by", "end_reason"])
    candidate = PolicyVersion.objects.select_for_update().get(pk=trial.candidate_id)
    if candidate.status == PolicyVersion.Status.SHADOW:
        candidate.status = PolicyVersion.Status.CANDIDATE
        candidate.save(update_fields=["status"])
    audit_record(actor=stopped_by, verb="policy_trial.ended", target=trial,
                 details={"outcome": trial.outcome, "reason": trial.end_reason})
    return trial


def trial_promote(*, trial: PolicyTrial, promoted_by: AbstractBaseUser | None) -> PolicyVersion:
    """Make the trial's candidate live if what the trial measured passes `trial_verdict`
    (raises PromotionRefused, with the reason in words, if it does not)."""
    trial = PolicyTrial.objects.select_related("candidate").get(pk=trial.pk)
    return policy_version_promote_on_trial(
        trial=trial, evidence=trial_evidence_for(trial=trial), promoted_by=promoted_by)


def trials_conclude(*, now: datetime | None = None) -> list[int]:
    """Stop every running trial whose days and attribution window have passed and whose verdict
    refuses (its decisions priced first); returns the ids of those stopped."""
    now = now or timezone.now()
    stopped = []
    for trial in PolicyTrial.objects.filter(outcome=PolicyTrial.Outcome.RUNNING).select_related(
            "campaign"):
        window = timedelta(days=trial.campaign.attribution_window_days)
        if now < trial.started_at + timedelta(days=trial.days) + window:
            continue
        decisions_attribute(campaign=trial.campaign)
        verdict = trial_check(trial=trial, evidence=trial_evidence_for(trial=trial))
        if not verdict.passed:
            trial_stop(trial=trial, stopped_by=None,
                       reason=f"refused at the end of its {trial.days} days: {verdict.reason}")
            stopped.append(trial.pk)
    return stopped
