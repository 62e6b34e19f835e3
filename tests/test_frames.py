"""Intra-decision camera frames: which simulation steps they show, where they go, what they refuse."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs import EnvConfig, RewardConfig, make_env
from envs.config import FaultsConfig, SafetyConfig
from envs.frames import IntraDecisionFrames
from envs.planner import LookaheadPlanner, planning_copy
from tests.conftest import assert_not_blank


def _camera(stack: int = 2) -> gym.Env:
    return make_env(EnvConfig(frame_width=64, frame_height=32, frame_stack=stack), RewardConfig())


@pytest.mark.parametrize(
    ("lags", "substeps"),
    [([0.4], [3]), ([0.2, 0.8], [1, 4]), ([0.8, 0.6, 0.4, 0.2], [1, 2, 3, 4])],
    ids=["one", "two_unsorted", "every_step"],
)
def test_frames_come_from_the_right_simulation_steps_in_time_order(
    lags: list[float], substeps: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = IntraDecisionFrames(_camera(stack=2), lags)
    base = env.unwrapped
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2 + len(lags), 64, 32) and env.observation_space.contains(obs)
    assert not obs[1:-1].any()  # no step yet: blank, like highway-env's older frames
    start = base.steps
    # Each grab is stamped with the simulation steps done (1-based within the decision); highway-env
    # counts a step only after road.step returns, hence the + 1.
    monkeypatch.setattr(env, "_render", lambda: np.full((64, 32), base.steps - start + 1, np.uint8))
    obs, *_ = env.step(1)
    assert [int(frame.max()) for frame in obs[1:-1]] == substeps
    assert base.steps - start == 5  # one decision = five simulation steps, none added or skipped


def test_intra_frames_show_the_road_between_decisions() -> None:
    env = make_env(EnvConfig(intra_frames=[0.4]), RewardConfig(), safety=SafetyConfig())
    env.reset(seed=1)
    for _ in range(3):
        obs, *_ = env.step(3)
    assert obs.shape == (5, 128, 64) and env.observation_space.contains(obs)
    assert_not_blank(obs)
    assert_not_blank(obs[:-1])  # the extra frame, just before the newest
    diff = np.abs(obs.astype(int) - obs[-2].astype(int)).sum(axis=(1, 2))
    assert diff[-1] > 0 and diff[-3] > 0, "the extra frame repeats a neighbour"
    env.close()


def test_planning_copy_sees_blank_extra_frames_and_leaves_the_env_alone() -> None:
    env = make_env(EnvConfig(intra_frames=[0.4]), RewardConfig(), safety=SafetyConfig())
    env.reset(seed=2)
    env.step(1)
    twin = planning_copy(env)
    obs, *_ = twin.step(1)
    assert obs.shape == (5, 128, 64) and not obs.any()
    frames = [w for w in _wrappers(env) if isinstance(w, IntraDecisionFrames)]
    assert env.unwrapped.road.step.wrapper is frames[0]
    assert LookaheadPlanner(horizon=2).act(env) in range(5)
    obs, *_ = env.step(1)
    assert_not_blank(obs[:-1])
    env.close()


def _wrappers(env: gym.Env) -> list[gym.Env]:
    out = []
    while isinstance(env, gym.Wrapper):
        out.append(env)
        env = env.env
    return out


@pytest.mark.parametrize(
    ("lags", "match"),
    [
        ([0.3], "multiple of the simulation step"),
        ([1.0], "shorter than a decision"),
        ([0.0], "positive"),
        ([0.4, 0.4], "repeated"),
        ([], "at least one"),
    ],
)
def test_wrapper_rejects_bad_lags(lags: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IntraDecisionFrames(_camera(), lags)


def test_wrapper_rejects_non_camera_envs() -> None:
    with pytest.raises(ValueError, match="GrayscaleObservation"):
        IntraDecisionFrames(make_env(EnvConfig(observation="kinematics"), RewardConfig()), [0.4])
    with pytest.raises(TypeError, match="highway-env"):
        IntraDecisionFrames(gym.make("CartPole-v1"), [0.4])


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"observation": "kinematics", "intra_frames": [0.4]}, "intra_frames: extra frames need"),
        ({"intra_frames": [-0.2]}, "intra_frames: lags must be distinct and > 0"),
        ({"intra_frames": [0.2, 0.2]}, "intra_frames: lags must be distinct"),
    ],
)
def test_config_rejects_bad_intra_frames(fields: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EnvConfig(**fields)


def test_faults_refuse_intra_frames() -> None:
    with pytest.raises(ValueError, match="faults: camera faults model one frame per decision"):
        make_env(EnvConfig(intra_frames=[0.4]), RewardConfig(), faults=FaultsConfig(dropout=0.1))


def test_frames_shape_counts_the_extra_frames() -> None:
    assert EnvConfig(frame_stack=3, intra_frames=[0.2, 0.4]).frames_shape == (5, 128, 64)
    assert EnvConfig().frames_shape == (4, 128, 64)
