"""Shared fixtures for the agents tests: small simulators and the default contact rules."""

from __future__ import annotations

import pytest

from agents.catalogue import default_catalogue
from agents.constraints import default_contact_rules
from agents.envs import CustomerJourneyEnv


@pytest.fixture
def catalogue():
    return default_catalogue()


@pytest.fixture
def rules():
    return default_contact_rules()


@pytest.fixture
def small_env():
    """64 retail customers over a short horizon, seeded."""
    env = CustomerJourneyEnv("retail", num_customers=64, horizon_days=20, seed=7)
    yield env
    env.close()
