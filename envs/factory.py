"""Env factory: ``env`` + ``reward`` config -> a wrapped highway-env environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import highway_env  # noqa: F401  (registers the highway-env ids, also in subprocesses)

from envs.config import EnvConfig, RewardConfig
from envs.rewards import NamedRewardWrapper

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
) -> gym.Env:
    """Build the highway-env scene with the named-term reward.

    :param env_cfg: which scene and observation
    :param reward_cfg: reward term weights
    :param render_mode: ``None`` or ``"rgb_array"`` (for videos)
    :raises ValueError: if ``env_cfg.id`` is not a registered gymnasium id
    """
    if env_cfg.id not in gym.registry:
        known = sorted(k for k in gym.registry if k.endswith("-v0") and "/" not in k)
        raise ValueError(f"env.id: unknown env id {env_cfg.id!r} (e.g. {', '.join(known[:8])})")
    env = gym.make(env_cfg.id, config=highway_config(env_cfg), render_mode=render_mode)
    return NamedRewardWrapper(env, reward_cfg)


def make_registered_env(
    highway_id: str,
    env: dict[str, Any] | EnvConfig | None = None,
    reward: dict[str, Any] | RewardConfig | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """Entry point of our registered ids; ``gym.make(id, env={...}, reward={...})``."""
    env_cfg = env if isinstance(env, EnvConfig) else EnvConfig(**{"id": highway_id, **(env or {})})
    reward_cfg = reward if isinstance(reward, RewardConfig) else RewardConfig(**(reward or {}))
    return make_env(env_cfg, reward_cfg, render_mode=render_mode)
