"""Env factory: ``env`` + ``reward`` config -> a wrapped highway-env environment."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import highway_env  # noqa: F401  (registers the highway-env ids, also in subprocesses)

from envs.bare_replay import BareReplay
from envs.config import EnvConfig, FaultsConfig, RewardConfig, SafetyConfig
from envs.faults import CameraFaults
from envs.frames import IntraDecisionFrames
from envs.rewards import NamedRewardWrapper
from envs.safety_monitor import SafetyMonitor


def _ensure_runtime_dir() -> None:
    # pygame's SDL prints an error on every env when XDG_RUNTIME_DIR is unset; give it a private dir.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


_ensure_runtime_dir()

GRAYSCALE_WEIGHTS = [0.2989, 0.5870, 0.1140]  # ITU-R 601 luma, highway-env's example

# EnvConfig fields passed through to highway-env's config when not None.
_PASSTHROUGH = (
    "lanes_count",
    "vehicles_count",
    "vehicles_density",
    "duration",
    "policy_frequency",
    "simulation_frequency",
)


def observation_config(cfg: EnvConfig) -> dict[str, Any]:
    """highway-env's ``observation`` config for the chosen observation kind."""
    if cfg.observation == "camera":
        return {
            "type": "GrayscaleObservation",
            "observation_shape": (cfg.frame_width, cfg.frame_height),
            "stack_size": cfg.frame_stack,
            "weights": GRAYSCALE_WEIGHTS,
            "scaling": cfg.frame_scaling,
        }
    return {"type": "Kinematics"}


def highway_config(cfg: EnvConfig) -> dict[str, Any]:
    """The config dict handed to highway-env for ``cfg``."""
    config: dict[str, Any] = {"observation": observation_config(cfg)}
    for name in _PASSTHROUGH:
        value = getattr(cfg, name)
        if value is not None:
            config[name] = value
    return config


def make_env(
    env_cfg: EnvConfig,
    reward_cfg: RewardConfig,
    render_mode: str | None = None,
    safety: SafetyConfig | None = None,
    faults: FaultsConfig | None = None,
    extra_config: dict[str, Any] | None = None,
    bare_replay: bool | None = None,
) -> gym.Env:
    """Build the highway-env scene: base env -> safety monitor (-> its bare replay) -> intra-decision frames
    -> camera faults -> named-term reward.

    The monitor sits below the faults, so it never sees a corrupted frame.

    :param env_cfg: which scene and observation
    :param reward_cfg: reward term weights
    :param render_mode: ``None`` or ``"rgb_array"`` (for videos)
    :param safety: monitor thresholds; ``None`` or ``enabled: false`` installs none
    :param faults: camera faults (camera observations only); ``None`` for a clean camera
    :param extra_config: more highway-env config keys (e.g. a scenario's ``scenario`` entry)
    :param bare_replay: replay every override without the monitor (:mod:`envs.bare_replay`); None: only
        when the ``bare_crash`` term has a weight. Needs the monitor, and is skipped under a shadow one (which
        hides nothing); evaluations ask for it to report the crashes the monitor hid.
    """
    config = {**highway_config(env_cfg), **(extra_config or {})}
    env = gym.make(env_cfg.id, config=config, render_mode=render_mode)
    if safety is not None and safety.enabled:
        env = SafetyMonitor(env, safety)
        if bare_replay is None:
            bare_replay = reward_cfg.bare_crash != 0
        # A shadow monitor executes every proposal: the step itself is the bare replay, its crashes real.
        if bare_replay and not safety.shadow:
            env = BareReplay(env, reward_cfg.bare_crash_horizon)
    if env_cfg.intra_frames:
        env = IntraDecisionFrames(env, env_cfg.intra_frames)
    if faults is not None and faults.active:
        faults.check_env(env_cfg)
        env = CameraFaults(env, faults)
    return NamedRewardWrapper(env, reward_cfg)


def make_registered_env(
    highway_id: str,
    env: dict[str, Any] | EnvConfig | None = None,
    reward: dict[str, Any] | RewardConfig | None = None,
    render_mode: str | None = None,
    safety: dict[str, Any] | SafetyConfig | None = None,
) -> gym.Env:
    """Entry point of our registered ids; ``gym.make(id, env={...}, reward={...}, safety={...})``."""
    env_cfg = env if isinstance(env, EnvConfig) else EnvConfig(**{"id": highway_id, **(env or {})})
    reward_cfg = reward if isinstance(reward, RewardConfig) else RewardConfig(**(reward or {}))
    safety_cfg = safety if isinstance(safety, SafetyConfig) or safety is None else SafetyConfig(**safety)
    return make_env(env_cfg, reward_cfg, render_mode=render_mode, safety=safety_cfg)
