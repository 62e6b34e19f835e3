"""Env factory, registered ids, named reward terms and camera frames."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.vec_env import SubprocVecEnv

from envs import SCENES, EnvConfig, RewardConfig, make_env
from envs.config import SafetyConfig
from envs.rewards import REWARD_TERMS, TERM_RANGES, NamedRewardWrapper, reward_range
from tests.conftest import CONFIG_DIR, assert_not_blank

REWARD_CONFIGS = sorted((CONFIG_DIR / "reward").glob("*.yaml"))
FAST = EnvConfig()
KINEMATICS = EnvConfig(observation="kinematics")


def reward_config(path: Path) -> RewardConfig:
    return RewardConfig(**yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("env_id", sorted(SCENES))
def test_check_env_on_registered_ids(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert_not_blank(obs)
    env.close()


def test_every_term_has_a_weight_key() -> None:
    fields = {f.name for f in dataclasses.fields(RewardConfig)}
    assert set(REWARD_TERMS) <= fields
    for path in REWARD_CONFIGS:
        assert set(REWARD_TERMS) <= set(yaml.safe_load(path.read_text())), path.name


@pytest.mark.parametrize("path", REWARD_CONFIGS, ids=lambda p: p.stem)
def test_reward_terms_sum_to_reward(path: Path) -> None:
    cfg = reward_config(path)
    env = make_env(KINEMATICS, cfg, safety=SafetyConfig())  # the monitor feeds the override term
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    seen_lane_change = False
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
        terms = info["reward_terms"]
        assert set(REWARD_TERMS) <= set(terms)
        assert sum(terms.values()) == pytest.approx(reward)
        weights = cfg.weights()
        low, high = reward_range(cfg)
        for name, raw in info["reward_raw"].items():
            assert TERM_RANGES[name][0] <= raw <= TERM_RANGES[name][1], name
            expected = weights[name] * raw / ((high - low) if cfg.normalize else 1.0)
            assert terms[name] == pytest.approx(expected), name
        seen_lane_change |= info["reward_raw"]["lane_change"] == 1.0
        if cfg.normalize:
            assert -1e-9 <= reward <= 1 + 1e-9
        if terminated or truncated:
            env.reset()
    assert seen_lane_change, "random driving should change lanes at least once in 30 steps"
    env.close()


def test_default_matches_highway_env_reward() -> None:
    env = make_env(KINEMATICS, reward_config(CONFIG_DIR / "reward" / "default.yaml"))
    env.reset(seed=1)
    for action in [3, 3, 0, 1, 2, 4, 4, 3]:
        _, reward, terminated, _, _ = env.step(action)
        assert reward == pytest.approx(env.unwrapped._reward(action))
        if terminated:
            break


def test_collision_term_on_crash() -> None:
    env = make_env(KINEMATICS, RewardConfig())
    env.reset(seed=0)
    for _ in range(30):
        _, reward, terminated, _, info = env.step(3)  # FASTER until something is hit
        if terminated:
            assert info["reward_raw"]["collision"] == 1.0
            assert info["reward_terms"]["collision"] < 0
            break
    env.close()


def test_camera_observation_shape_follows_config() -> None:
    env = make_env(EnvConfig(frame_width=96, frame_height=48, frame_stack=2), RewardConfig())
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 96, 48) and obs.dtype == np.uint8
    obs, *_ = env.step(1)
    assert_not_blank(obs)
    env.close()


def test_wrapper_rejects_bad_arguments() -> None:
    base = gym.make("highway-fast-v0")
    with pytest.raises(TypeError, match="RewardConfig"):
        NamedRewardWrapper(base, {"collision": -1})
    with pytest.raises(TypeError, match="highway-env"):
        NamedRewardWrapper(gym.make("CartPole-v1"), RewardConfig())


def _registered_fast() -> gym.Env:
    return gym.make("safedrive/HighwayFast-v0")


def test_registered_id_in_subprocess() -> None:
    venv = SubprocVecEnv([_registered_fast, _registered_fast])
    try:
        obs = venv.reset()
        assert obs.shape == (2, 4, 128, 64)
        obs, rewards, _, infos = venv.step(np.array([1, 3]))
        assert all("reward_terms" in info for info in infos)
        assert_not_blank(obs[0])
    finally:
        venv.close()
