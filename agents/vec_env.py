"""Vectorized training envs: subprocesses when n_envs > 1, seeded per env."""

from __future__ import annotations

import dataclasses
import functools
import signal

import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

from envs import EnvConfig, RewardConfig, make_env
from envs.action_risks import ActionRisks, RiskSpec
from envs.advice import ExpertAdvice
from envs.config import FaultsConfig, SafetyConfig
from envs.drivers import DriverParams, OvertakingDriver
from envs.facts import SceneFacts
from envs.guard import GuardParams
from envs.planner import PlannerParams


def _build(
    env_cfg: EnvConfig,
    reward_cfg: RewardConfig,
    safety: SafetyConfig | None,
    faults: FaultsConfig | None,
    in_subprocess: bool,
    expert: DriverParams | None = None,
    planner: PlannerParams | GuardParams | None = None,
    facts: bool = False,
    risks: RiskSpec | None = None,
) -> gym.Env:
    if in_subprocess:
        # Ctrl-C reaches the whole process group; the parent alone decides how to stop,
        # so workers must survive it long enough for the final checkpoint.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = make_env(env_cfg, reward_cfg, safety=safety, faults=faults)
    if facts:
        env = SceneFacts(env)
    active = safety if safety is not None and safety.enabled else None
    if risks is not None:
        env = ActionRisks(
            env, risks.source, active, risks.horizon, continuation=risks.continuation, driver=risks.driver
        )
    if expert is not None:
        # The expert proposes only what the monitor would accept (its defaults where there is none).
        env = ExpertAdvice(env, OvertakingDriver(expert, safety=active or SafetyConfig()))
        env.teach_with(planner)
    return env


def make_vec_env(
    env_cfg: EnvConfig,
    reward_cfg: RewardConfig,
    n_envs: int,
    seed: int,
    safety: SafetyConfig | None = None,
    faults: FaultsConfig | None = None,
    expert: DriverParams | None = None,
    unmonitored: int = 0,
    planner: PlannerParams | GuardParams | None = None,
    facts: bool = False,
    risks: RiskSpec | None = None,
    shadow: int = 0,
    densities: list[float] | None = None,
) -> VecEnv:
    """``n_envs`` copies of the env; env i is seeded with ``seed + i`` at its first reset.

    :param env_cfg: scene and observation
    :param reward_cfg: reward weights
    :param n_envs: number of envs; > 1 runs them in subprocesses
    :param seed: base seed
    :param safety: the safety monitor during training (``None`` = none)
    :param faults: camera faults during training
    :param expert: the style of a rule-based driver whose action goes into every info (``expert_action``),
        for imitation; ``None`` = no advice
    :param unmonitored: how many of the envs (the last ones) run without the monitor
    :param planner: the advice comes from a lookahead planner (:mod:`envs.planner`) or a guarded driver
        (:mod:`envs.guard`) over that driver, with these settings; ``None``: from the driver itself
    :param facts: add the scene's ground-truth facts to every info (``scene_facts``, :mod:`envs.facts`)
    :param risks: label every state with its unsafe meta-actions (``info["action_risks"]``,
        :mod:`envs.action_risks`) by these settings
    :param shadow: how many of the monitored envs (the last ones before the unmonitored) run the monitor
        in shadow mode (``SafetyConfig.shadow``: it reports and charges, and changes nothing)
    :param densities: traffic density multipliers; env i gets item i mod their number (``None`` or empty:
        ``env_cfg.vehicles_density`` for all)
    """
    if not 0 <= unmonitored <= n_envs:
        raise ValueError(f"unmonitored: must be in 0..{n_envs}, got {unmonitored}")
    if not 0 <= shadow <= n_envs - unmonitored:
        raise ValueError(f"shadow: must be in 0..{n_envs - unmonitored} (n_envs - unmonitored), got {shadow}")
    if shadow and (safety is None or not safety.enabled):
        raise ValueError("shadow: needs a safety monitor (safety=rss, rss_exact or rss_paper)")
    subprocess = n_envs > 1
    watcher = dataclasses.replace(safety, shadow=True) if shadow else None
    monitors = [safety] * (n_envs - unmonitored - shadow) + [watcher] * shadow + [None] * unmonitored
    scenes = [
        dataclasses.replace(env_cfg, vehicles_density=densities[i % len(densities)]) if densities else env_cfg
        for i in range(n_envs)
    ]
    fns = [
        functools.partial(_build, scene, reward_cfg, monitor, faults, subprocess, expert, planner, facts, risks)
        for scene, monitor in zip(scenes, monitors, strict=True)
    ]
    venv: VecEnv = SubprocVecEnv(fns) if subprocess else DummyVecEnv(fns)
    venv.seed(seed)
    return VecMonitor(venv, info_keywords=("crashed",))
