"""The guarded driver: the rules, vetoed where their action's bare replay crashes, as baseline and teacher."""

from __future__ import annotations

import pytest

from agents.config import ConfigError, load_eval_config, load_train_config
from agents.policies import GuardedPolicy, make_baseline
from envs import EnvConfig, RewardConfig, make_env
from envs.advice import ExpertAdvice
from envs.bare_replay import bare_copy, replay_outcome
from envs.config import SafetyConfig
from envs.drivers import DriverParams, OvertakingDriver
from envs.guard import GuardedDriver, GuardParams
from envs.planner import PlannerParams
from envs.safety_monitor import IDLE, LANE_RIGHT, SLOWER
from tests.conftest import CONFIG_DIR, scene

KINEMATICS = EnvConfig(observation="kinematics")
# Rules that never change lanes: held at the floor behind a slower car, they stay and crash.
LANE_KEEPER = DriverParams(lane_change_gain=1.0e9)


def snapshot(env) -> list:
    return [(v.position.tolist(), float(v.speed)) for v in env.unwrapped.road.vehicles]


@pytest.mark.parametrize("monitor", [True, False])
def test_the_guard_vetoes_the_action_that_walks_into_a_crash(monitor: bool) -> None:
    # At the 20-m/s floor, 25 m behind a car at 12 m/s, the lane alongside free. The monitor's brake would
    # save the ego; the replay leaves it out, so the verdict is the same with or without it.
    env, _ = scene(0, 20.0, [(0, 130.0, 12.0)], SafetyConfig(enabled=monitor))
    rules = OvertakingDriver(LANE_KEEPER)
    guard = GuardedDriver(rules, GuardParams(horizon=6))
    own = rules.act(env.unwrapped)
    assert own in (IDLE, SLOWER)
    assert guard.outcome(env, own).crashed
    before = snapshot(env)
    assert guard.act(env) == LANE_RIGHT and guard.vetoes == 1
    assert not guard.outcome(env, LANE_RIGHT).crashed
    assert snapshot(env) == before, "the replays run on copies"


def test_the_guard_keeps_the_rules_action_when_its_replay_is_safe() -> None:
    env, _ = scene(1, 25.0, [(2, 160.0, 22.0), (0, 60.0, 25.0)], SafetyConfig())
    guard = GuardedDriver(params=GuardParams(horizon=4))
    assert guard.act(env) == guard.driver.act(env.unwrapped)
    assert guard.vetoes == 0


def test_replay_outcome_counts_decisions_and_speed() -> None:
    env, _ = scene(1, 25.0, [], SafetyConfig(enabled=False))
    outcome = replay_outcome(bare_copy(env), IDLE, horizon=3)
    assert not outcome.crashed and outcome.decisions == 3
    assert 3 * 19.5 < outcome.speed_sum < 3 * 25.5
    crash = replay_outcome(bare_copy(scene(0, 20.0, [(0, 110.0, 0.0)], SafetyConfig(enabled=False))[0]), IDLE, 5)
    assert crash.crashed and crash.decisions < 5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"params": GuardParams(horizon=1), "driver": "rules"}, TypeError, "OvertakingDriver"),
        ({"params": PlannerParams()}, TypeError, "GuardParams"),
    ],
)
def test_guard_refuses_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        GuardedDriver(**kwargs)


@pytest.mark.parametrize(("field", "value"), [("horizon", 0), ("reach", 0.0)])
def test_guard_params_refuse_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        GuardParams(**{field: value})


def test_expert_advice_teaches_with_the_guard_and_back() -> None:
    rules = OvertakingDriver()
    env = ExpertAdvice(make_env(KINEMATICS, RewardConfig(), safety=SafetyConfig()), rules)
    env.teach_with(GuardParams(horizon=3, reach=100.0))
    assert isinstance(env.driver, GuardedDriver) and env.driver.driver is rules
    assert env.driver.params == GuardParams(3, 100.0)
    _, info = env.reset(seed=5001)
    for _ in range(3):
        assert info["expert_action"] == env.driver.act(env.env)
        _, _, _, _, info = env.step(info["expert_action"])
    env.teach_with(None)
    assert env.driver is rules
    env.close()


def test_guarded_baseline_reads_its_settings_from_the_config() -> None:
    cfg = load_eval_config(CONFIG_DIR, ["policy=guarded", "guard.horizon=4", "guard.reach=null"])
    assert cfg.guard == GuardParams(4, None)
    policy = make_baseline("guarded", guard=cfg.guard)
    assert isinstance(policy, GuardedPolicy) and policy.driver.params == cfg.guard
    env = make_env(KINEMATICS, RewardConfig())
    env.reset(seed=1_000_000)
    policy.reset(env, 1_000_000)
    assert policy(None) == policy.driver.act(env)
    with pytest.raises(ConfigError, match="horizon: must be >= 1"):
        load_eval_config(CONFIG_DIR, ["policy=guarded", "guard.horizon=0"])


@pytest.mark.parametrize(("expert", "horizon"), [("guarded", 7), ("rules", 10)])
def test_imitation_config_builds_the_guard(expert: str, horizon: int) -> None:
    cfg = load_train_config(CONFIG_DIR, [f"imitation.expert={expert}", f"imitation.guard_horizon={horizon}"])
    expected = GuardParams(horizon, cfg.imitation.lookahead_reach) if expert == "guarded" else None
    assert cfg.imitation.planner() == expected
    with pytest.raises(ConfigError, match="guard_horizon: must be >= 1"):
        load_train_config(CONFIG_DIR, ["imitation.guard_horizon=0"])
