"""The lookahead planner: its copies replay the real future, it avoids what it foresees, and it can advise."""

from __future__ import annotations

import numpy as np
import pytest

from envs import EnvConfig, RewardConfig, make_env
from envs.advice import ExpertAdvice
from envs.config import SafetyConfig
from envs.drivers import OvertakingDriver
from envs.planner import LookaheadPlanner, planning_copy
from envs.safety_monitor import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER
from tests.conftest import assert_not_blank, scene

KINEMATICS = EnvConfig(observation="kinematics")


def snapshot(env) -> tuple:
    base = env.unwrapped
    return [(v.position.tolist(), float(v.speed)) for v in base.road.vehicles], base.time, base.steps


@pytest.mark.parametrize("observation", ["camera", "kinematics"])
def test_planning_copy_replays_the_future_and_leaves_the_env_untouched(observation: str) -> None:
    driver = OvertakingDriver()
    env = make_env(EnvConfig(observation=observation), RewardConfig(), safety=SafetyConfig())
    env.reset(seed=5000)
    for _ in range(2):
        env.step(driver.act(env.unwrapped))
    before = snapshot(env)
    twin = planning_copy(env)
    ahead = [float(twin.step(driver.act(twin.unwrapped))[4]["speed"]) for _ in range(6)]
    assert snapshot(env) == before
    real = []
    for _ in range(6):
        obs, _, _, _, info = env.step(driver.act(env.unwrapped))
        real.append(float(info["speed"]))
    assert real == ahead and len(set(real)) > 1
    if observation == "camera":
        assert_not_blank(obs)  # the real env still renders; only the copy's frames are blank


def test_planning_copy_within_reach_drops_far_cars_and_keeps_the_egos_near_future() -> None:
    driver = OvertakingDriver()
    env = make_env(KINEMATICS, RewardConfig(), safety=SafetyConfig())
    env.reset(seed=5000)
    before = snapshot(env)
    base = env.unwrapped
    near = [v for v in base.road.vehicles if abs(v.position[0] - base.vehicle.position[0]) <= 100.0]
    twin = planning_copy(env, reach=100.0)
    assert len(near) < len(base.road.vehicles) == 20 + 1  # highway-fast spreads its 20 cars over ~500 m
    assert [v.position.tolist() for v in twin.unwrapped.road.vehicles] == [v.position.tolist() for v in near]
    assert twin.unwrapped.vehicle in twin.unwrapped.road.vehicles
    ahead = [float(twin.step(driver.act(twin.unwrapped))[4]["speed"]) for _ in range(3)]
    assert snapshot(env) == before
    real = [float(env.step(driver.act(env.unwrapped))[4]["speed"]) for _ in range(3)]
    assert ahead == real


@pytest.mark.parametrize("monitor", [False, True])
def test_planner_escapes_a_stopped_car(monitor: bool) -> None:
    """25 m behind a stopped car at 30 m/s: staying in lane crashes, a lane change escapes."""
    env, _ = scene(1, 30.0, [(1, 125.0, 0.0)], SafetyConfig(enabled=monitor))
    planner = LookaheadPlanner(horizon=3)
    scores = planner.scores(env)
    if monitor:
        assert min(scores.values()) > 0, "the monitor's reflexes save every rollout"
    else:
        assert max(scores[IDLE], scores[FASTER], scores[SLOWER]) < 0 < min(scores[LANE_LEFT], scores[LANE_RIGHT])
    assert planner.act(env) in (LANE_LEFT, LANE_RIGHT)


def test_planner_keeps_the_drivers_action_on_ties() -> None:
    env, _ = scene(1, 30.0, [(2, 160.0, 22.0)], SafetyConfig())
    planner = LookaheadPlanner(horizon=3)
    before = snapshot(env)
    scores = planner.scores(env)
    assert scores[FASTER] == scores[IDLE] > scores[SLOWER], "at top speed FASTER and IDLE tie"
    assert planner.act(env) == planner.driver.act(env.unwrapped) == FASTER
    assert snapshot(env) == before


def test_planner_arguments() -> None:
    with pytest.raises(ValueError, match="horizon"):
        LookaheadPlanner(horizon=0)
    with pytest.raises(ValueError, match="override_cost"):
        LookaheadPlanner(override_cost=-1.0)
    with pytest.raises(ValueError, match="reach"):
        LookaheadPlanner(reach=0.0)
    with pytest.raises(TypeError, match="OvertakingDriver"):
        LookaheadPlanner(driver="rules")
    with pytest.raises(TypeError, match="LookaheadPlanner"):
        ExpertAdvice(make_env(KINEMATICS, RewardConfig()), driver="rules")


def test_planner_as_the_expert() -> None:
    planner = LookaheadPlanner(horizon=2)
    env = ExpertAdvice(make_env(KINEMATICS, RewardConfig(), safety=SafetyConfig()), planner)
    _, info = env.reset(seed=5001)
    advised = []
    for _ in range(4):
        assert info["expert_action"] == planner.act(env.env)  # planning on the stack below the advice
        advised.append(info["expert_action"])
        _, _, _, _, info = env.step(info["expert_action"])
    assert set(advised) <= {LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER}
    assert np.isfinite(info["speed"])
