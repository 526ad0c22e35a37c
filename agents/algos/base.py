"""The interface every agent implements (see DESIGN.md, "The agents contract").

An agent scores actions for a batch of customers' feature vectors. Subclasses implement `_fit`,
`scores` and (when their policy is not greedy on the scores) `_probabilities`; masking, input
checks, sampling, seeding and persistence live here once.
"""

from __future__ import annotations

import dataclasses
import io
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from agents.common.masking import greedy_probabilities, sample_from, validate_mask
from agents.common.running import ObservationNormalizer

FORMAT_VERSION = 1


@dataclass
class TrainingProgress:
    """What `fit` reports to its callback every few updates (the console's progress bar)."""

    env_steps: int
    total_steps: int
    mean_episode_return: float | None
    elapsed_seconds: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.env_steps / max(1, self.total_steps))

    @property
    def eta_seconds(self) -> float | None:
        if self.env_steps <= 0:
            return None
        return self.elapsed_seconds * (self.total_steps - self.env_steps) / self.env_steps


@dataclass(frozen=True)
class ScoresNetwork:
    """How an agent computes `scores` on torch: ``scale * network(normalizer(obs))``.

    Declared by the agents whose scores are a network (`Agent.scores_network`), so explanations
    can run DeepLIFT / expected gradients on it and score one action per row on its last layers
    instead of guessing the network from attribute names.
    """

    network: torch.nn.Module
    """Normalised features (n, d) -> raw scores (n, A)."""
    normalizer: ObservationNormalizer | None = None
    """The per-feature input normalisation applied before `network` (None: the raw features)."""
    scale: float = 1.0
    """What the network's outputs are multiplied by (a response model's reward scale)."""


ProgressCallback = Callable[[TrainingProgress], bool | None]
"""Called during `fit`; returning False cancels training (the agent keeps what it learned)."""


@dataclass
class TrainingReport:
    """The learning curve and cost of one `fit` call."""

    algorithm: str
    env_steps: int = 0
    wall_seconds: float = 0.0
    curve_steps: list[int] = field(default_factory=list)
    curve_returns: list[float] = field(default_factory=list)
    cancelled: bool = False
    extra: dict[str, float] = field(default_factory=dict)

    def record(self, env_steps: int, mean_episode_return: float) -> None:
        self.curve_steps.append(int(env_steps))
        self.curve_returns.append(float(mean_episode_return))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Agent(ABC):
    """Base class: a policy over Discrete actions given Box feature vectors.

    :param observation_space: the single-customer observation space (1-D Box)
    :param action_space: the single-customer action space (Discrete)
    :param seed: seeds every random choice the agent makes (exploration, init, sampling)
    """

    name: ClassVar[str]
    warm_start: ClassVar[str | None] = None
    """How `agents.offline.pretrain` warm-starts this agent from logged decisions, declared by the
    algorithm rather than guessed from its attributes: "response_model" (`fit_logged` on the
    logged rows), "linear_bandit" (`update` on the logged rows), "actor_critic" (an offline Q
    distilled into `policy` and `value`), "q_network" (`q_net` regressed on an offline Q).
    None: it cannot be warm-started (rules, random, tabular Q-learning)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0):
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise TypeError(
                f"{self.name} needs a 1-D Box observation space, got {observation_space!r}"
            )
        if not isinstance(action_space, gym.spaces.Discrete):
            raise TypeError(f"{self.name} needs a Discrete action space, got {action_space!r}")
        if int(action_space.start) != 0:
            raise ValueError("action_space must start at 0")
        self.observation_space = observation_space
        self.action_space = action_space
        self.n_features = int(observation_space.shape[0])
        self.n_actions = int(action_space.n)
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.torch_generator = torch.Generator().manual_seed(self.seed)

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _fit(
        self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
        report: TrainingReport, callback: ProgressCallback | None,
    ) -> None:
        """Learn from `total_steps` env steps (customer-days), filling `report`."""

    @abstractmethod
    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Unmasked preference of every action, (n, A): higher is better.

        Logits for policy-gradient agents, Q-values for value-based ones, expected immediate
        reward for bandits and the response model. Explanations attribute these.
        """

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The policy's distribution over allowed actions; greedy on `scores` by default."""
        return greedy_probabilities(self.scores(obs), mask)

    # ------------------------------------------------------------------ declared abilities
    # What an agent can say about its own decisions, beyond `scores`. Explanations (agents.explain)
    # ask these instead of sniffing attribute names; the defaults say "nothing more".
    def scores_network(self) -> ScoresNetwork | None:
        """The torch network behind `scores`, or None when the scores are not one network."""
        return None

    def exploration_bonus(self, obs: np.ndarray) -> np.ndarray | None:
        """(n, A) what the policy adds to `scores` before choosing (an upper confidence bound's
        optimism), or None when it ranks actions by `scores` alone."""
        return None

    def score_uncertainty(self, obs: np.ndarray) -> np.ndarray | None:
        """(n, A) standard deviation of each action's score, or None when the agent keeps none."""
        return None

    def rule_fired(self, obs: np.ndarray, action_mask: Any = None) -> list[str] | None:
        """Per customer, the name of the rule that decided its action (a rule-based policy), or
        None when no rule decides."""
        return None

    def _get_state(self) -> dict[str, Any]:
        """Everything `save` must keep: tensors, numpy arrays and plain Python values."""
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what `_get_state` returned."""

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this agent with `agents.make` (see `save`)."""
        config = getattr(self, "config", None)
        return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}

    # ------------------------------------------------------------------ public API
    def fit(
        self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
        callback: ProgressCallback | None = None,
    ) -> TrainingReport:
        if total_steps <= 0:
            raise ValueError("total_steps must be positive")
        report = TrainingReport(algorithm=self.name)
        started = time.perf_counter()
        self._fit(env, int(total_steps), report, callback)
        report.wall_seconds = time.perf_counter() - started
        return report

    def action_probabilities(self, obs: np.ndarray, action_mask: Any = None) -> np.ndarray:
        obs = self._check_obs(obs)
        mask = validate_mask(action_mask, obs.shape[0], self.n_actions)
        probs = np.asarray(self._probabilities(obs, mask), dtype=np.float64)
        probs = np.where(mask, probs, 0.0)
        return probs / probs.sum(axis=1, keepdims=True)

    def act(self, obs: np.ndarray, action_mask: Any = None, deterministic: bool = True) -> np.ndarray:
        probs = self.action_probabilities(obs, action_mask)
        if deterministic:
            return probs.argmax(axis=1)
        return sample_from(probs, self.rng)

    def save(self, path: str | Path) -> Path:
        """Write the agent to one file that `agents.load` reads without running pickled code."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path

    def to_bytes(self) -> bytes:
        """The agent as bytes that `agents.loads` reads (what `save` writes): tensors and plain
        values only, so storing a policy in a database needs no file."""
        payload = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "seed": self.seed,
            "observation_space": _box_to_dict(self.observation_space),
            "n_actions": self.n_actions,
            "hyperparameters": {k: _to_saveable(v) if isinstance(v, np.ndarray) else v
                                for k, v in self.hyperparameters().items()},
            "state": _to_saveable(self._get_state()),
            "rng": _to_saveable(self.rng.bit_generator.state),
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return buffer.getvalue()

    # ------------------------------------------------------------------ helpers
    def _check_obs(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 1:
            obs = obs[None, :]
        if obs.ndim != 2 or obs.shape[1] != self.n_features:
            raise ValueError(f"obs has shape {obs.shape}; expected (n, {self.n_features})")
        return obs

    def _report_progress(
        self, callback: ProgressCallback | None, report: TrainingReport, env_steps: int,
        total_steps: int, mean_return: float | None, started: float,
    ) -> bool:
        """Tell the callback how far training is; False when it asked to stop."""
        if callback is None:
            return True
        progress = TrainingProgress(env_steps, total_steps, mean_return, time.perf_counter() - started)
        if callback(progress) is False:
            report.cancelled = True
            return False
        return True


def _box_to_dict(space: gym.spaces.Box) -> dict[str, Any]:
    return {"low": torch.as_tensor(space.low), "high": torch.as_tensor(space.high),
            "dtype": str(space.dtype)}


def box_from_dict(spec: dict[str, Any]) -> gym.spaces.Box:
    return gym.spaces.Box(low=spec["low"].numpy(), high=spec["high"].numpy(),
                          dtype=np.dtype(spec["dtype"]))


def _to_saveable(value: Any) -> Any:
    """numpy -> torch tensors, recursively, so `torch.load(weights_only=True)` can read it back."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value)), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _to_saveable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_saveable(v) for v in value]
    return value


def from_saveable(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy().astype(value["dtype"], copy=False)
        return {k: from_saveable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_saveable(v) for v in value]
    return value
