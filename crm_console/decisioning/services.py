"""Writes for decisioning: policy versions (more arrive with the live decision loop)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

import agents
from agents.features import FEATURE_NAMES
from crm_console.campaigns.models import Campaign
from crm_console.compliance.services import audit_record
from crm_console.decisioning.models import PolicyVersion


def agent_to_bytes(agent: agents.Agent) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = agent.save(Path(folder) / "policy.pt")
        return path.read_bytes()


@transaction.atomic
def policy_version_create(
    *, campaign: Campaign, agent: agents.Agent, action_ids: list[int] | tuple[int, ...],
    status: str = PolicyVersion.Status.CANDIDATE, metrics: dict[str, Any] | None = None,
    created_by: AbstractBaseUser | None = None,
) -> PolicyVersion:
    """Store a trained agent as the campaign's next version (its bytes live in the database)."""
    if len(action_ids) != agent.n_actions:
        raise ValueError(f"{len(action_ids)} action ids for an agent with {agent.n_actions} actions")
    artifact = agent_to_bytes(agent)
    next_version = (
        PolicyVersion.objects.select_for_update().filter(campaign=campaign)
        .aggregate(latest=Max("version"))["latest"] or 0
    ) + 1
    version = PolicyVersion.objects.create(
        campaign=campaign, version=next_version, algorithm=agent.name, status=status,
        artifact=artifact, artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        action_ids=list(action_ids), feature_names=list(FEATURE_NAMES), metrics=metrics or {},
        promoted_at=timezone.now() if status == PolicyVersion.Status.LIVE else None,
    )
    audit_record(actor=created_by, verb="policy_version.created", target=version,
                 details={"algorithm": agent.name, "status": status})
    return version
