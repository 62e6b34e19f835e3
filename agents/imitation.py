"""Warm start for PPO: clone a privileged expert into the camera policy, then one DAgger round.

The expert (:class:`envs.drivers.OvertakingDriver`, or :class:`envs.planner.LookaheadPlanner` over it,
reached through the ``ExpertAdvice`` wrapper's ``info["expert_action"]``) reads ground truth; the
student sees only frames.

1. ``record``: the expert drives all training envs; frames, expert actions and rewards are kept.
2. ``fit``: the policy head learns the expert's action (cross-entropy) and the value head
   the discounted return (mean squared error), on minibatches.
3. optionally ``record`` again with the student driving and the expert labelling the states
   the student reaches (Ross et al., "A Reduction of Imitation Learning ... to No-Regret
   Online Learning", 2011), then ``fit`` on everything.

With a frozen backbone, its features are computed once per sample, not once per epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from agents.auxiliary import FactsHead, explained_variance
from agents.config import ImitationConfig
from envs.facts import FACT_NAMES


@dataclass
class Demonstrations:
    """Recorded steps: observations, the expert's action in each, and the discounted return from each."""

    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    ego_speeds: list[float] = field(default_factory=list)
    """The ego's speed [m/s] in each observation (NaN where the env does not report it): ground truth
    the frames show only indirectly, kept to measure what the clone misses (:mod:`agents.clone_probe`)."""
    speed_indices: list[int] = field(default_factory=list)
    """The ego's target-speed index in each observation (-1 where the env does not report it)."""
    facts: list[np.ndarray] = field(default_factory=list)
    """The scene's ground-truth facts (:mod:`envs.facts`) in each observation, NaN where the env does not
    report them: the targets of the auxiliary regression (:mod:`agents.auxiliary`)."""

    def __len__(self) -> int:
        return len(self.actions)


@dataclass
class DrivingTally:
    """How the recorded episodes went (to tell whether the expert, or student, drove well)."""

    episodes: int = 0
    crashes: int = 0
    speeds: list[float] = field(default_factory=list)
    agreements: list[bool] = field(default_factory=list)
    """Whether the driven action equalled the expert's, at every step."""

    def summary(self) -> dict[str, float | int | None]:
        return {
            "episodes": self.episodes,
            "collision_rate": self.crashes / self.episodes if self.episodes else None,
            "mean_speed": float(np.mean(self.speeds)) if self.speeds else None,
            "expert_agreement": float(np.mean(self.agreements)) if self.agreements else None,
        }


NO_FACTS = np.full(len(FACT_NAMES), np.nan, dtype=np.float32)


def _advice(infos: Any, reset_infos: Any, dones: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """(expert action, ego speed, target-speed index, scene facts) for each env's current observation, read
    from its info (a reset's after an episode ended); speed NaN, index -1 and facts NaN where the env does
    not report them."""
    current = [reset_infos[i] if dones[i] else infos[i] for i in range(len(dones))]
    return (
        np.array([info["expert_action"] for info in current]),
        np.array([info.get("speed", np.nan) for info in current], dtype=float),
        np.array([info.get("target_speed_index", -1) for info in current], dtype=int),
        [np.asarray(info.get("scene_facts", NO_FACTS), dtype=np.float32) for info in current],
    )


def record(
    venv: VecEnv,
    steps: int,
    gamma: float,
    student: Any | None = None,
    into: Demonstrations | None = None,
) -> tuple[Demonstrations, DrivingTally]:
    """Drive ``venv`` for ``steps`` env steps (all envs together) and record every state.

    :param venv: training envs wrapped in ``ExpertAdvice``
    :param gamma: discount for the returns
    :param student: a policy ``obs batch -> actions`` that drives instead of the expert (DAgger)
    :param into: demonstrations to append to
    """
    demos, tally = into or Demonstrations(), DrivingTally()
    n = venv.num_envs
    obs = venv.reset()
    reset_infos = venv.unwrapped.reset_infos
    expert, ego_speed, speed_index, facts = _advice(reset_infos, reset_infos, np.ones(n, dtype=bool))
    open_episodes: list[list[tuple[int, float]]] = [[] for _ in range(n)]  # (sample index, reward)
    for _ in range(max(1, steps // n)):
        actions = expert if student is None else np.asarray(student(obs))
        obs_before = obs
        obs, rewards, dones, infos = venv.step(actions)
        for i in range(n):
            demos.obs.append(np.array(obs_before[i]))
            demos.actions.append(int(expert[i]))
            demos.returns.append(0.0)
            demos.ego_speeds.append(float(ego_speed[i]))
            demos.speed_indices.append(int(speed_index[i]))
            demos.facts.append(facts[i])
            open_episodes[i].append((len(demos) - 1, float(rewards[i])))
            tally.speeds.append(float(infos[i].get("speed", 0.0)))
            tally.agreements.append(int(actions[i]) == int(expert[i]))
            if dones[i]:
                _fill_returns(demos, open_episodes[i], gamma)
                open_episodes[i] = []
                tally.episodes += 1
                tally.crashes += int(bool(infos[i].get("crashed", False)))
        expert, ego_speed, speed_index, facts = _advice(infos, venv.unwrapped.reset_infos, dones)
    for episode in open_episodes:  # cut off by the budget: returns without the unseen tail
        _fill_returns(demos, episode, gamma)
    return demos, tally


def _fill_returns(demos: Demonstrations, episode: list[tuple[int, float]], gamma: float) -> None:
    ret = 0.0
    for index, reward in reversed(episode):
        ret = reward + gamma * ret
        demos.returns[index] = ret


class _Heads:
    """The policy split into a fixed encoder (run once per sample) and the trainable rest."""

    def __init__(self, policy: Any) -> None:
        if not getattr(policy, "share_features_extractor", True):
            raise ValueError("imitation needs a policy whose actor and critic share the features extractor")
        self.policy = policy
        extractor = policy.features_extractor
        self.frozen_backbone = bool(getattr(extractor, "frozen", False))
        self.trainable: nn.Module = extractor.head if self.frozen_backbone else extractor

    @torch.no_grad()
    def encode(self, obs: np.ndarray, chunk: int = 512) -> torch.Tensor:
        out = None
        for start in range(0, len(obs), chunk):
            x = torch.as_tensor(obs[start : start + chunk], device=self.policy.device)
            x = preprocess_obs(x, self.policy.observation_space, normalize_images=self.policy.normalize_images)
            x = self.policy.features_extractor.backbone(x) if self.frozen_backbone else x
            if out is None:  # filled in place: concatenating the chunks would hold the set twice
                out = x.new_empty((len(obs), *x.shape[1:]))
            out[start : start + len(x)] = x
        return out

    def features(self, encoded: torch.Tensor) -> torch.Tensor:
        """The features extractor's output."""
        return self.trainable(encoded)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action logits, values) from :meth:`features`."""
        latent_pi, latent_vf = self.policy.mlp_extractor(features)
        return self.policy.action_net(latent_pi), self.policy.value_net(latent_vf).squeeze(-1)

    def parameters(self) -> list[nn.Parameter]:
        modules = [self.trainable, self.policy.mlp_extractor, self.policy.action_net, self.policy.value_net]
        return [p for m in modules for p in m.parameters() if p.requires_grad]


def split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out, training) sample indices. A sample's side depends only on its index and the seed,
    so data appended in a later DAgger round never moves an already-trained sample into the holdout."""
    held = np.random.default_rng(seed).random(n) < holdout
    return np.flatnonzero(held), np.flatnonzero(~held)


def fit(
    policy: Any,
    demos: Demonstrations,
    cfg: ImitationConfig,
    seed: int = 0,
    aux: tuple[FactsHead, float] | None = None,
) -> dict[str, Any]:
    """Train ``policy``'s action and value heads on ``demos``; returns losses and agreement rates.

    :param aux: (head, weight): also regress the demonstrations' scene facts from the features
        (:mod:`agents.auxiliary`); the report then holds the held-out error and each fact's R^2
    :raises ValueError: ``aux`` with demonstrations that lack scene facts
    """
    heads = _Heads(policy)
    hold, train = split(len(demos), cfg.holdout, seed)
    rng = np.random.default_rng([seed, len(demos)])
    rng.shuffle(train)
    encoded = heads.encode(np.stack(demos.obs))
    actions = torch.as_tensor(np.array(demos.actions), dtype=torch.long, device=policy.device)
    returns = torch.as_tensor(np.array(demos.returns), dtype=torch.float32, device=policy.device)
    parameters = heads.parameters()
    if aux is not None:
        facts = torch.as_tensor(np.stack(demos.facts), device=policy.device)
        if not torch.isfinite(facts).all():
            raise ValueError("aux: the demonstrations lack scene facts (build the envs with SceneFacts)")
        aux[0].to(policy.device)
        parameters += list(aux[0].parameters())
    optimizer = torch.optim.Adam(parameters, lr=cfg.learning_rate)
    policy.set_training_mode(True)
    for _ in range(cfg.epochs):
        for start in range(0, len(train), cfg.batch_size):
            batch = torch.as_tensor(train[start : start + cfg.batch_size])
            features = heads.features(encoded[batch])
            logits, values = heads.forward(features)
            policy_loss = nn.functional.cross_entropy(logits, actions[batch])
            value_loss = nn.functional.mse_loss(values, returns[batch])
            loss = policy_loss + cfg.value_weight * value_loss
            if aux is not None:
                loss = loss + aux[1] * nn.functional.mse_loss(aux[0](features), facts[batch])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
        rng.shuffle(train)
    policy.set_training_mode(False)
    return _scores(heads, encoded, actions, returns, train, hold, None if aux is None else (aux[0], facts))


@torch.no_grad()
def _scores(
    heads: _Heads, encoded, actions, returns, train, hold, aux: tuple[FactsHead, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Agreement and losses on the training and the held-out samples. With ``aux`` = (facts head, facts),
    also the head's error and per-fact R^2 on the held-out samples (the training ones if none are held out)."""
    out = {}
    aux_split = "holdout" if len(hold) else "train"
    for name, index in (("train", train), ("holdout", hold)):
        if len(index) == 0:
            continue
        index = torch.as_tensor(index)
        features = _in_chunks(heads.features, encoded, index)
        logits, values = heads.forward(features)
        out[f"{name}_accuracy"] = float((logits.argmax(1) == actions[index]).float().mean())
        out[f"{name}_policy_loss"] = float(nn.functional.cross_entropy(logits, actions[index]))
        out[f"{name}_value_loss"] = float(nn.functional.mse_loss(values, returns[index]))
        if aux is not None and name == aux_split:
            predicted, facts = aux[0](features), aux[1][index]
            out["aux_loss"] = float(nn.functional.mse_loss(predicted, facts))
            out["facts_r2"] = explained_variance(predicted.cpu().numpy(), facts.cpu().numpy())
    return out


def _in_chunks(fn: Any, encoded: torch.Tensor, index: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """``fn(encoded[index])`` a chunk at a time: on the whole set at once, the CNN's activations and the
    indexed copy of the frames peaked at 17.8 GB for 18k camera samples (README, Timing)."""
    return torch.cat([fn(encoded[index[start : start + chunk]]) for start in range(0, len(index), chunk)])


def warm_start(
    model: Any,
    venv: VecEnv,
    cfg: ImitationConfig,
    gamma: float,
    seed: int = 0,
    log: Any = print,
    aux: tuple[FactsHead, float] | None = None,
) -> dict:
    """Clone the expert into ``model.policy`` (and run the DAgger round); returns a report.

    :param model: a fresh SB3 PPO model on ``venv``
    :param venv: the training envs, built with an ``expert`` (and ``facts`` for ``aux``)
    :param cfg: budgets and optimizer settings
    :param gamma: the discount of the returns the value head learns (PPO's gamma)
    :param log: prints one line per phase
    :param aux: (head, weight) of the auxiliary scene-fact regression, fitted alongside (see :func:`fit`)
    """
    report: dict[str, Any] = {}
    start = time.monotonic()
    demos, tally = record(venv, cfg.steps, gamma)
    report["expert_driving"] = tally.summary()
    report["clone"] = fit(model.policy, demos, cfg, seed, aux)
    log(_line("expert drove", len(demos), tally, report["clone"]))
    if cfg.dagger_steps:

        def student(obs: np.ndarray) -> np.ndarray:
            return model.predict(obs, deterministic=True)[0]

        demos, tally = record(venv, cfg.dagger_steps, gamma, student=student, into=demos)
        report["student_driving"] = tally.summary()
        report["dagger"] = fit(model.policy, demos, cfg, seed, aux)
        log(_line("student drove", len(demos), tally, report["dagger"]))
    venv.set_attr("advising", False)  # PPO does not need the expert: spare its planning at every step
    report["samples"] = len(demos)
    report["env_steps"] = cfg.steps + cfg.dagger_steps
    report["wall_time_s"] = round(time.monotonic() - start, 1)
    return report


def _line(who: str, samples: int, tally: DrivingTally, scores: dict[str, float]) -> str:
    s = tally.summary()
    agreement = scores.get("holdout_accuracy", scores.get("train_accuracy", float("nan")))
    line = (
        f"imitation: {who} {s['episodes']} episodes (crash {s['collision_rate'] or 0:.0%}, "
        f"{s['mean_speed'] or 0:.1f} m/s); {samples} samples; clone matches the expert on "
        f"{agreement:.1%} of held-out steps"
    )
    if "facts_r2" in scores:
        r2 = scores["facts_r2"]
        line += f"; facts R^2 front gap {r2['front_gap'] or 0:.2f}, closing {r2['front_closing'] or 0:.2f}"
    return line
