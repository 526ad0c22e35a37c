"""Logs of the marketer's rules (10 % exploration) with the outcomes a response model needs."""

from __future__ import annotations

import agents
from agents.envs import CustomerJourneyEnv
from agents.offline import collect, explore
from agents.response_model import RESPONSE_INFO_KEYS, ResponseLog


def rules_logs(customers: int, rows: int, seed: int):
    """(ResponseLog, the logging env, the rules) for `rows` retail customer-days."""
    env = CustomerJourneyEnv("retail", num_customers=customers, horizon_days=200, seed=seed)
    rules = agents.make("rule_based", env.single_observation_space, env.single_action_space,
                        catalogue=env.catalogue)
    logged = collect(env, explore(rules, 0.1), rows, seed=seed, info_keys=RESPONSE_INFO_KEYS)
    return ResponseLog.from_logged(logged), env, rules
