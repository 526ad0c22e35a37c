"""How fast and how faithful is each SHAP explainer, per agent kind? (agents.explain)

For every agent kind and explainer option it prints:
  init s       building the Explainer (k-means background, permutations): once per policy version
  p50/p95 ms   one decision explained on its own (scores, SHAP, runner-up, masks, sentence)
  cpu p95      the same in CPU time of this process (less sensitive to a shared machine)
  batch /s     decisions explained per second in one batch call (wall clock)
  /cpu-s       the same per CPU-second of this process
  add. err     max |base + sum(shap) - score| (additivity; exact methods ~1e-7)
  rel. err     mean L1 distance to a reference (permutation SHAP with 64 orders) / its L1 norm
  top-3        share of decisions whose top-3 features (by |shap|) match the reference's

Targets (issue 5, 2 cores): p95 <= 20 ms per single decision, >= 500 decisions/s in batch.

    .venv/bin/python benchmarks/explain_speed.py                # all agents, 1 torch thread
    .venv/bin/python benchmarks/explain_speed.py --agents actor_critic --batch 5000

Each agent is first trained for --train-steps customer-days on the `retail` simulator (so the
faithfulness columns describe a policy with real structure). The background is
`agents.explain.simulated_background` summarised by shap.kmeans; the decisions explained are the
simulator's customers after 20 days under that agent, with their real masks, mask reasons
(default contact rules) and ProfileState counters.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import agents  # noqa: E402
from agents import features as F  # noqa: E402
from agents.constraints import default_contact_rules  # noqa: E402
from agents.envs import CustomerJourneyEnv  # noqa: E402
from agents.explain import Explainer, simulated_background  # noqa: E402

METHODS_BY_AGENT = {
    "actor_critic": [("permutation", 1), ("permutation", 2), ("permutation", 4),
                     ("shap_permutation", 1), ("deep", None), ("gradient", None)],
    "dqn": [("permutation", 1), ("permutation", 2), ("permutation", 4), ("shap_permutation", 1),
            ("deep", None), ("gradient", None)],
    "supervised": [("permutation", 1), ("permutation", 2), ("shap_permutation", 1),
                   ("deep", None), ("gradient", None)],
    "linucb": [("linear", None), ("permutation", 2), ("shap_permutation", 1)],
    "rule_based": [("permutation", 2), ("shap_permutation", 1)],
}


def build_agent(name: str, train_steps: int, seed: int) -> agents.Agent:
    """`name` trained for `train_steps` customer-days on the retail simulator (0: untrained)."""
    agent = agents.make(name, F.observation_space(), gym.spaces.Discrete(49), seed=seed)
    if train_steps and name != "rule_based":
        agent.fit(CustomerJourneyEnv("retail", num_customers=256, seed=seed),
                  total_steps=train_steps)
    return agent


def decisions(agent: agents.Agent, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """n simulated customers after 20 days under `agent`: obs, masks, mask reasons, profiles."""
    env = CustomerJourneyEnv("retail", num_customers=n, seed=seed)
    obs, info = env.reset(seed=seed)
    for _ in range(20):
        obs, _, _, _, info = env.step(agent.act(obs, info["action_mask"], deterministic=False))
    return obs, info["action_mask"], info["mask_reasons"], env.profile.copy()


def faithfulness(phi: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    rel = np.abs(phi - reference).sum(1) / np.maximum(np.abs(reference).sum(1), 1e-12)
    top = np.argsort(-np.abs(phi), axis=1)[:, :3]
    top_ref = np.argsort(-np.abs(reference), axis=1)[:, :3]
    agree = np.mean([set(a) == set(b) for a, b in zip(top, top_ref)])
    return float(rel.mean()), float(agree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default=",".join(METHODS_BY_AGENT))
    parser.add_argument("--batch", type=int, default=2000, help="decisions in the batch call")
    parser.add_argument("--singles", type=int, default=200, help="single-decision calls timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--train-steps", type=int, default=50_000,
                        help="customer-days of training on retail per agent (0: untrained)")
    parser.add_argument("--n-background", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", action="store_true",
                        help="say in the output that the machine was shared with other work")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rules = default_contact_rules()
    load = os.getloadavg()
    print(f"# agents.explain speed | {platform.node()} | {os.cpu_count()} cores | torch threads "
          f"{args.threads} | load avg {load[0]:.1f} {load[1]:.1f} | {F.N_FEATURES} features, "
          f"49 actions, k-means background k={args.n_background}")
    if args.shared:
        print("# NOTE: the machine is shared with other work: timings are noisy, "
              "treat them as indicative")
    header = (f"{'agent':<13}{'method':<20}{'init s':>7}{'p50 ms':>8}{'p95 ms':>8}"
              f"{'cpu p95':>8}{'batch /s':>9}{'/cpu-s':>8}{'add. err':>9}{'rel. err':>9}"
              f"{'top-3':>6}")
    print(header)
    print("-" * len(header))
    n_check = min(200, args.batch)
    for name in args.agents.split(","):
        agent = build_agent(name, args.train_steps, args.seed)
        background_obs = simulated_background(agent, seed=args.seed)
        obs, allowed, flags, profiles = decisions(agent, args.batch, args.seed + 1)
        actions = agent.act(obs, allowed)
        references: dict[bytes, np.ndarray] = {}
        for method, n_perm in METHODS_BY_AGENT[name]:
            label = method if n_perm is None else f"{method} P={n_perm}"
            started = time.perf_counter()
            try:
                explainer = Explainer(agent, background=background_obs, method=method,
                                      n_background=args.n_background,
                                      n_permutations=n_perm or 1, seed=args.seed,
                                      contact_rules=rules)
            except ValueError as exc:
                print(f"{name:<13}{label:<20}  n/a: {exc}")
                continue
            init_s = time.perf_counter() - started
            # the reference: 64 feature orders over the same background with the same weights
            key = explainer.weights.tobytes()
            if key not in references:
                references[key] = Explainer(
                    agent, background=explainer.background, background_weights=explainer.weights,
                    n_background=None, method="permutation", n_permutations=64, seed=99,
                ).shap_values(obs[:n_check], actions[:n_check])[0]
            ref_phi = references[key]
            if len(references) == 1 and method == METHODS_BY_AGENT[name][0][0]:
                # how well two 64-order references agree: the ceiling for the top-3 column
                twin = Explainer(
                    agent, background=explainer.background, background_weights=explainer.weights,
                    n_background=None, method="permutation", n_permutations=64, seed=98,
                ).shap_values(obs[:n_check], actions[:n_check])[0]
                ceiling = faithfulness(twin, ref_phi)
            for i in range(5):  # warm up
                explainer.explain(obs[i], allowed[i], reason_flags=flags[i],
                                  profiles=profiles.take([i]))
            latencies, cpu = [], []
            for i in range(args.singles):
                j = i % args.batch
                started, started_cpu = time.perf_counter(), time.process_time()
                explainer.explain(obs[j], allowed[j], reason_flags=flags[j],
                                  profiles=profiles.take([j]))
                latencies.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            batch_n = args.batch if method in ("permutation", "linear") else min(args.batch, 500)
            started, started_cpu = time.perf_counter(), time.process_time()
            explanations = explainer.explain(obs[:batch_n], allowed[:batch_n],
                                             actions=actions[:batch_n],
                                             reason_flags=flags[:batch_n],
                                             profiles=profiles.take(np.arange(batch_n)))
            throughput = batch_n / (time.perf_counter() - started)
            per_cpu_s = batch_n / max(time.process_time() - started_cpu, 1e-9)
            additivity = max(e.additivity_error for e in explanations)
            phi = np.array([list(e.shap_values.values()) for e in explanations[:n_check]])
            rel, top3 = faithfulness(phi, ref_phi)
            p50, p95 = 1e3 * np.percentile(latencies, 50), 1e3 * np.percentile(latencies, 95)
            cpu95 = 1e3 * np.percentile(cpu, 95)
            print(f"{name:<13}{label:<20}{init_s:>7.2f}{p50:>8.2f}{p95:>8.2f}{cpu95:>8.2f}"
                  f"{throughput:>9.0f}{per_cpu_s:>8.0f}{additivity:>9.1e}{rel:>9.3f}{top3:>6.2f}",
                  flush=True)
        print(f"  reference vs a second 64-order reference: rel. err {ceiling[0]:.3f}, top-3 "
              f"{ceiling[1]:.2f} (the ceiling for the top-3 column)")
        print(f"  e.g. {explanations[0].sentence}")
    print("# exact (shap.ExactExplainer): n/a for 32 features (2^32 coalitions); tested on 6.")


if __name__ == "__main__":
    main()
