"""The bare replay (envs/bare_replay.py): which overrides hid a crash, and that replaying changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import monitor_of, scene

from envs import EnvConfig, RewardConfig, make_env
from envs.bare_replay import BareReplay
from envs.config import SafetyConfig
from envs.safety_monitor import FASTER, IDLE, LANE_LEFT, SafetyMonitor

PRICED = RewardConfig(bare_crash=-5.0, normalize=False)


@pytest.mark.parametrize(
    ("ego_speed", "others", "action", "overridden", "bare_crash"),
    [
        (25.0, [(1, 125.0, 15.0)], FASTER, True, True),  # 20 m behind a car 10 m/s slower: only the monitor saves it
        (25.0, [(0, 100.0, 25.0)], LANE_LEFT, True, True),  # into a car alongside
        (25.0, [(0, 92.0, 27.0)], LANE_LEFT, True, True),  # in front of a closing follower
        (30.0, [(1, 135.0, 20.0)], IDLE, True, False),  # the brake fires, but SLOWER next would have sufficed
        (25.0, [(0, 80.0, 27.0)], LANE_LEFT, False, False),  # a gap the monitor accepts
        (25.0, [], FASTER, False, False),  # an empty road
    ],
)
def test_bare_crash_marks_only_the_overrides_that_hid_a_crash(
    ego_speed: float, others: list, action: int, overridden: bool, bare_crash: bool
) -> None:
    env, _ = scene(1, ego_speed, others, reward=PRICED)
    _, _, terminated, _, info = env.step(action)
    assert not terminated  # the real ego never crashes: the monitor is on
    assert info["safety"]["overridden"] == overridden
    assert info["safety"]["bare_crash"] == bare_crash
    assert info["reward_terms"]["bare_crash"] == (-5.0 if bare_crash else 0.0)


def test_a_shorter_replay_sees_fewer_crashes() -> None:
    flags = []
    for horizon in (1, 2):
        cfg = RewardConfig(bare_crash=-5.0, bare_crash_horizon=horizon, normalize=False)
        env, _ = scene(1, 25.0, [(1, 128.0, 15.0)], reward=cfg)  # FASTER hits it in the second second
        flags.append(env.step(FASTER)[4]["safety"]["bare_crash"])
    assert flags == [False, True]


def test_the_replay_leaves_the_episode_unchanged() -> None:
    runs = []
    for reward in (RewardConfig(), PRICED):
        env = make_env(EnvConfig(observation="kinematics"), reward, safety=SafetyConfig())
        env.reset(seed=500_002)
        path, flags = [], []
        for _ in range(12):  # always FASTER: the monitor overrides often, and some proposals would crash
            _, _, terminated, truncated, info = env.step(FASTER)
            path.append(env.unwrapped.vehicle.position.copy())
            flags.append(info["safety"].get("bare_crash"))
            if terminated or truncated:
                break
        runs.append((np.array(path), flags))
    (plain, no_flags), (replayed, flags) = runs
    np.testing.assert_array_equal(plain, replayed)
    assert set(no_flags) == {None}  # no weight, no replay
    assert any(flags)


def test_factory_installs_the_replay_only_with_a_monitor_and_a_weight() -> None:
    env_cfg = EnvConfig(observation="kinematics")
    stack = make_env(env_cfg, PRICED, safety=SafetyConfig())
    assert isinstance(stack.env, BareReplay) and isinstance(stack.env.env, SafetyMonitor)
    assert not isinstance(make_env(env_cfg, RewardConfig(), safety=SafetyConfig()).env, BareReplay)
    bare = make_env(env_cfg, PRICED, safety=SafetyConfig(enabled=False))
    _, _, _, _, info = (bare.reset(seed=0), bare.step(FASTER))[1]
    assert info["reward_raw"]["bare_crash"] == 0.0


def test_bad_arguments_are_refused() -> None:
    env = make_env(EnvConfig(observation="kinematics"), RewardConfig(), safety=SafetyConfig())
    with pytest.raises(TypeError, match="SafetyMonitor"):
        BareReplay(env)
    monitor = monitor_of(env)
    with pytest.raises(ValueError, match="horizon"):
        BareReplay(monitor, horizon=0)
    with pytest.raises(ValueError, match="reach"):
        BareReplay(monitor, reach=0.0)
    with pytest.raises(ValueError, match="bare_crash_horizon"):
        RewardConfig(bare_crash_horizon=0)


def test_evaluation_counts_the_crashes_the_monitor_hid() -> None:
    from agents.evaluation import run_episode, summarize

    env_cfg = EnvConfig(observation="kinematics")
    always_faster = lambda obs: FASTER  # noqa: E731  (leans on the monitor at every step)
    replayed = run_episode(
        make_env(env_cfg, RewardConfig(), safety=SafetyConfig(), bare_replay=True), always_faster, 500_002
    )
    plain = run_episode(make_env(env_cfg, RewardConfig(), safety=SafetyConfig()), always_faster, 500_002)
    assert plain.hidden_crashes is None and summarize([plain])["hidden_crashes"] is None
    assert 0 < replayed.hidden_crashes <= replayed.interventions
    assert replayed.speeds == plain.speeds  # replaying changed nothing
    m = summarize([replayed, plain])
    assert m["hidden_crashes"] == replayed.hidden_crashes and m["hidden_crash_episodes"] == 1.0


def test_a_planning_copy_leaves_the_replay_out() -> None:
    from envs.planner import planning_copy

    stack = make_env(EnvConfig(observation="kinematics"), PRICED, safety=SafetyConfig())
    stack.reset(seed=0)
    twin = planning_copy(stack)
    chain = [twin]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    assert not any(isinstance(w, BareReplay) for w in chain)
    assert isinstance(twin.env, SafetyMonitor)  # the reward wrapper now sits right on the monitor
    _, _, _, _, info = twin.step(FASTER)
    assert "bare_crash" not in info["safety"] and "override" in info["reward_terms"]
    assert isinstance(stack.env, BareReplay)  # the original is untouched
