"""Imitation warm start: the expert-advice wrapper, recording, cloning, and a smoke run with it."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from agents.config import ImitationConfig, load_train_config
from agents.imitation import Demonstrations, fit, record, split
from agents.schema import ConfigError
from envs import EnvConfig, RewardConfig, make_env
from envs.advice import ExpertAdvice
from envs.drivers import OvertakingDriver
from tests.conftest import CONFIG_DIR, SMOKE, run_script

KINEMATICS = EnvConfig(observation="kinematics")


# ---------------------------------------------------------------- the wrapper
def test_expert_advice_reports_the_drivers_next_action() -> None:
    env = ExpertAdvice(make_env(KINEMATICS, RewardConfig()))
    plain = make_env(KINEMATICS, RewardConfig())
    obs, info = env.reset(seed=3)
    plain_obs, _ = plain.reset(seed=3)
    np.testing.assert_array_equal(obs, plain_obs)
    for _ in range(4):
        expected = OvertakingDriver().act(env.unwrapped)
        assert info["expert_action"] == expected
        assert info["target_speed_index"] == env.unwrapped.vehicle.speed_index
        obs, reward, _, _, info = env.step(expected)
        plain_obs, plain_reward, _, _, _ = plain.step(expected)
        np.testing.assert_array_equal(obs, plain_obs)
        assert reward == plain_reward
    env.advising = False
    assert "expert_action" not in env.step(1)[4]


def test_expert_advice_rejects_other_envs() -> None:
    with pytest.raises(TypeError, match="highway-env"):
        ExpertAdvice(gym.make("CartPole-v1"))
    continuous = make_env(KINEMATICS, RewardConfig(), extra_config={"action": {"type": "ContinuousAction"}})
    with pytest.raises(ValueError, match="DiscreteMetaAction"):
        ExpertAdvice(continuous)


# ---------------------------------------------------------------- recording, on a fake env
class CountingEnv(gym.Env):
    """Observation = step index; reward 1 per step; episodes of 3 steps; the expert says ``obs % 5``."""

    observation_space = gym.spaces.Box(0, 10, (1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(5)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {"expert_action": 0, "speed": 20.0}

    def step(self, action):
        self.t += 1
        done = self.t == 3
        info = {"expert_action": self.t % 5, "speed": 20.0 + self.t, "crashed": False}
        return np.array([float(self.t)], np.float32), 1.0, done, False, info


def fake_venv(n: int = 2) -> VecEnv:
    return DummyVecEnv([CountingEnv for _ in range(n)])


def test_record_keeps_expert_labels_and_discounted_returns() -> None:
    demos, tally = record(fake_venv(), steps=12, gamma=0.5)
    assert len(demos) == 12
    assert demos.actions == [int(o[0]) % 5 for o in demos.obs]
    # Each episode is 3 rewards of 1: returns 1 + .5 + .25, 1 + .5, 1.
    assert demos.returns[:6] == [1.75, 1.75, 1.5, 1.5, 1.0, 1.0]
    assert tally.summary()["episodes"] == 4 and tally.summary()["expert_agreement"] == 1.0
    # The speed belongs to the observation it was recorded with, a reset's included.
    assert demos.ego_speeds == [20.0 + o[0] for o in demos.obs]


def test_record_with_a_student_measures_agreement() -> None:
    demos, tally = record(fake_venv(), steps=6, gamma=0.9, student=lambda obs: np.zeros(len(obs), dtype=int))
    assert demos.actions == [0, 0, 1, 1, 2, 2], "labels stay the expert's, whoever drives"
    assert tally.summary()["expert_agreement"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------- cloning
class SignEnv(gym.Env):
    """The expert's action is the index of the largest of five features."""

    observation_space = gym.spaces.Box(-1, 1, (5,), dtype=np.float32)
    action_space = gym.spaces.Discrete(5)

    def reset(self, *, seed=None, options=None):
        return np.zeros(5, np.float32), {}

    def step(self, action):
        return np.zeros(5, np.float32), 0.0, True, False, {}


def test_fit_learns_a_separable_expert() -> None:
    model = PPO("MlpPolicy", DummyVecEnv([SignEnv]), n_steps=16, batch_size=16, seed=0, device="cpu")
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (3000, 5)).astype(np.float32)
    demos = Demonstrations(list(obs), [int(a) for a in obs.argmax(1)], [1.0] * len(obs))
    scores = fit(model.policy, demos, ImitationConfig(steps=1, epochs=15, learning_rate=3e-3))
    assert scores["holdout_accuracy"] > 0.85, scores
    assert scores["holdout_value_loss"] < 0.05, "the value head learns the (constant) return"
    action, _ = model.predict(np.array([[0.0, 0.9, 0.0, 0.0, 0.0]], np.float32), deterministic=True)
    assert int(action[0]) == 1


def test_holdout_stays_held_out_when_data_grows() -> None:
    hold_small, train_small = split(1000, 0.1, seed=4)
    hold_big, train_big = split(1500, 0.1, seed=4)
    assert set(hold_small) == set(hold_big[hold_big < 1000])
    assert not set(train_big) & set(hold_big) and len(hold_big) + len(train_big) == 1500
    assert 50 < len(hold_small) < 150


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("imitation.steps=-1", "steps: must be >= 0"),
        ("imitation.dagger_steps=10", "dagger_steps: needs steps > 0"),
        ("imitation.holdout=0.7", "holdout: must be in [0, 0.5)"),
        ("imitation.expert=oracle", "expert: .oracle. is not allowed"),
        ("imitation.lookahead_horizon=0", "lookahead_horizon: must be >= 1"),
        ("imitation.lookahead_reach=-5", "lookahead_reach: must be > 0 or null"),
        ("imitation.lookahead_override_cost=-1", "lookahead_override_cost: must be >= 0"),
    ],
)
def test_imitation_config_errors(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace(")", r"\)")):
        load_train_config(CONFIG_DIR, ["imitation=none", override])


# ---------------------------------------------------------------- a run with it
@pytest.mark.parametrize("expert", ["imitation.expert=rules", "imitation.expert=guarded", "imitation.expert=lookahead"])
def test_smoke_run_with_imitation(tmp_path: Path, expert: str) -> None:
    proc = run_script(
        "train_agent.py",
        *SMOKE,
        "run.name=im",
        f"run.dir={tmp_path}",
        "imitation=rules",
        "imitation.steps=96",
        "imitation.dagger_steps=32",
        "imitation.epochs=2",
        expert,
        "imitation.lookahead_horizon=1",
        "imitation.guard_horizon=2",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "im"
    report = json.loads((run / "imitation.json").read_text())
    assert report["env_steps"] == 128 and report["samples"] == 128
    assert report["expert_driving"]["expert_agreement"] == 1.0
    assert 0.0 <= report["dagger"]["holdout_accuracy"] <= 1.0
    assert yaml.safe_load((run / "config.yaml").read_text())["imitation"]["steps"] == 96
    assert "imitation: expert drove" in proc.stdout
    assert json.loads((run / "summary.json").read_text())["imitation_env_steps"] == 128


@pytest.mark.parametrize("cost", [0.0, 15.0])
def test_training_envs_planner_prices_overrides_as_configured(cost: float) -> None:
    from agents.vec_env import make_vec_env
    from envs.advice import ExpertAdvice
    from envs.config import SafetyConfig
    from envs.drivers import DriverParams
    from envs.planner import LookaheadPlanner, PlannerParams

    planner = PlannerParams(horizon=2, override_cost=cost, reach=100.0)
    venv = make_vec_env(
        KINEMATICS, RewardConfig(), 1, seed=0, safety=SafetyConfig(), expert=DriverParams(), planner=planner
    )
    try:
        advice = venv.venv.envs[0]
        assert isinstance(advice, ExpertAdvice) and isinstance(advice.driver, LookaheadPlanner)
        assert (advice.driver.override_cost, advice.driver.horizon, advice.driver.reach) == (cost, 2, 100.0)
        venv.reset()
        _, _, _, infos = venv.step(np.array([1]))
        assert "expert_action" in infos[0]
    finally:
        venv.close()


def test_unmonitored_training_envs() -> None:
    from agents.vec_env import make_vec_env
    from envs.config import SafetyConfig

    venv = make_vec_env(KINEMATICS, RewardConfig(), 2, seed=0, safety=SafetyConfig(), unmonitored=1)
    try:
        venv.reset()
        _, _, _, infos = venv.step(np.array([3, 3]))
        assert "safety" in infos[0] and "safety" not in infos[1]
    finally:
        venv.close()
    with pytest.raises(ValueError, match="unmonitored"):
        make_vec_env(KINEMATICS, RewardConfig(), 1, seed=0, unmonitored=2)


@pytest.mark.parametrize(
    ("n_envs", "unmonitored", "shadow", "kinds"),
    [(3, 1, 1, ["monitor", "shadow", "none"]), (2, 0, 2, ["shadow", "shadow"])],
)
def test_shadow_training_envs(n_envs: int, unmonitored: int, shadow: int, kinds: list[str]) -> None:
    from agents.vec_env import make_vec_env
    from envs.config import SafetyConfig

    venv = make_vec_env(
        KINEMATICS, RewardConfig(), n_envs, seed=0, safety=SafetyConfig(), unmonitored=unmonitored, shadow=shadow
    )
    try:
        venv.reset()
        _, _, _, infos = venv.step(np.array([3] * n_envs))
        seen = ["none" if "safety" not in i else "shadow" if i["safety"]["shadow"] else "monitor" for i in infos]
        assert seen == kinds
    finally:
        venv.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"shadow": 2, "unmonitored": 1}, "shadow: must be in 0..1"), ({"shadow": 1, "safety": None}, "needs a safety")],
)
def test_shadow_envs_rejected(kwargs: dict, match: str) -> None:
    from agents.vec_env import make_vec_env
    from envs.config import SafetyConfig

    with pytest.raises(ValueError, match=match):
        make_vec_env(KINEMATICS, RewardConfig(), 2, seed=0, **{"safety": SafetyConfig(), **kwargs})


def test_encoding_and_scoring_in_chunks_match_the_whole_set() -> None:
    """The warm start encodes and scores a chunk at a time (memory); the figures must not depend on it."""
    import torch

    from agents.imitation import _Heads, _in_chunks

    model = PPO("MlpPolicy", DummyVecEnv([SignEnv]), n_steps=16, batch_size=16, seed=0, device="cpu")
    heads = _Heads(model.policy)
    obs = np.random.default_rng(1).uniform(-1, 1, (50, 5)).astype(np.float32)
    encoded = heads.encode(obs, chunk=7)
    assert torch.equal(encoded, torch.as_tensor(obs))
    index = torch.as_tensor(np.random.default_rng(2).permutation(50)[:33])
    with torch.no_grad():
        chunked = _in_chunks(heads.features, encoded, index, chunk=8)
        whole = heads.features(encoded[index])
    assert torch.allclose(chunked, whole)


@pytest.mark.parametrize(
    ("n_envs", "densities", "expected"),
    [(2, [], [None, None]), (2, [1.5], [1.5, 1.5]), (3, [0.5, 2.0], [0.5, 2.0, 0.5])],
    ids=["env-default", "one-for-all", "mixed"],
)
def test_training_envs_take_their_densities(n_envs: int, densities: list[float], expected: list) -> None:
    from agents.vec_env import make_vec_env

    venv = make_vec_env(KINEMATICS, RewardConfig(), n_envs, seed=0, densities=densities)
    try:
        venv.reset()
        configs = venv.get_attr("config")
        roads = venv.get_attr("road")
    finally:
        venv.close()
    plain = gym.make(KINEMATICS.id)
    default = plain.unwrapped.config["vehicles_density"]
    plain.close()
    assert [c["vehicles_density"] for c in configs] == [default if d is None else d for d in expected]
    spans = [np.ptp([v.position[0] for v in road.vehicles]) for road in roads]
    if densities == [0.5, 2.0]:  # the same 20 cars, spawned 4x closer together
        assert spans[1] < spans[0] / 2 and spans[1] < spans[2] / 2
