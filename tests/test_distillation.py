"""Distilling the teacher during PPO: advice on a share of steps, labels on the right observation, the fit."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.config import load_train_config
from agents.distillation import TeacherDistillation
from agents.plots import read_scalars
from agents.schema import ConfigError
from agents.training import train
from envs import EnvConfig, RewardConfig, make_env
from envs.advice import ExpertAdvice
from envs.drivers import OvertakingDriver
from envs.planner import LookaheadPlanner, PlannerParams
from tests.conftest import CONFIG_DIR, SMOKE, DrawnEnv

KINEMATICS = EnvConfig(observation="kinematics")


class SignTeacherEnv(DrawnEnv):
    """Observation +-1 at random; the teacher's advice for it (in the info of the step or reset that
    produced it) is FASTER (3) on +1 and SLOWER (4) on -1; episodes of 4 steps; reward 0 always."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _draw(self) -> tuple[np.ndarray, dict]:
        sign = 1.0 if self.np_random.random() < 0.5 else -1.0
        return np.array([sign], dtype=np.float32), {"expert_action": 3 if sign > 0 else 4}

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        # like ExpertAdvice: no advice on the step that ends the episode
        return obs, reward, terminated, truncated, {} if terminated else info


def test_labels_pair_the_advice_with_the_state_it_was_given_for() -> None:
    venv = DummyVecEnv([SignTeacherEnv, SignTeacherEnv])
    model = PPO("MlpPolicy", venv, learning_rate=3e-3, n_steps=32, batch_size=32, n_epochs=1, seed=0)
    callback = TeacherDistillation(2.0, memory=256, batch_size=32)
    model.learn(512, callback=callback)
    obs, labels = np.array(callback.obs)[:, 0], np.array(callback.labels)
    assert callback.collected == 512  # every step, episode ends included (their advice is the reset's)
    assert set(labels[obs > 0]) == {3} and set(labels[obs < 0]) == {4}
    with torch.no_grad():
        probs = model.policy.get_distribution(torch.tensor([[1.0], [-1.0]])).distribution.probs
    assert probs[0, 3] > 0.6 and probs[1, 4] > 0.6  # reward 0 everywhere: the teacher alone taught it


def test_annealed_weight_falls_linearly_to_zero() -> None:
    model = PPO("MlpPolicy", DummyVecEnv([SignTeacherEnv]), n_steps=32, batch_size=32, n_epochs=1, seed=0)
    callback = TeacherDistillation(2.0, memory=64, batch_size=32, anneal_until=512)
    model.learn(256, callback=callback)
    assert model.num_timesteps == 256 and callback.weight() == pytest.approx(1.0)
    assert callback.fit() is not None
    model.num_timesteps = 600  # past the schedule: no weight, no fit
    assert callback.weight() == 0.0 and callback.fit() is None
    with pytest.raises(ValueError, match="anneal_until"):
        TeacherDistillation(1.0, anneal_until=0)


def test_without_advice_nothing_is_labelled() -> None:
    class Silent(SignTeacherEnv):
        def _draw(self):
            return super()._draw()[0], {}

    model = PPO("MlpPolicy", DummyVecEnv([Silent]), n_steps=32, batch_size=32, n_epochs=1, seed=0)
    callback = TeacherDistillation(1.0)
    model.learn(64, callback=callback)
    assert callback.collected == 0 and callback.fit() is None


@pytest.mark.parametrize("rate", [1.0, 0.25])
def test_expert_advice_on_a_seeded_share_of_steps(rate: float) -> None:
    def advised(seed: int) -> list[bool]:
        env = ExpertAdvice(make_env(KINEMATICS, RewardConfig()), advice_rate=rate)
        flags = ["expert_action" in env.reset(seed=seed)[1]]
        for _ in range(40):
            obs, _, terminated, truncated, info = env.step(1)
            if terminated or truncated:
                break
            flags.append("expert_action" in info)
        return flags

    first = advised(7)
    assert first == advised(7)  # the draws follow the reset seed
    share = float(np.mean(first))
    assert share == 1.0 if rate == 1.0 else 0.05 < share < 0.5


@pytest.mark.parametrize("rate", [0.0, 1.5])
def test_expert_advice_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="advice_rate"):
        ExpertAdvice(make_env(KINEMATICS, RewardConfig()), advice_rate=rate)


@pytest.mark.parametrize(
    "override",
    [
        "agent.distill_coef=-1",
        "agent.distill_memory=0",
        "agent.distill_rate=0",
        "agent.distill_anneal=true",
        "agent.distill_expert=oracle",
    ],
)
def test_distill_config_errors(override: str) -> None:
    with pytest.raises(ConfigError, match=override.split("=")[0].split(".")[1]):
        load_train_config(CONFIG_DIR, [override])


@pytest.mark.parametrize("anneal", [False, True], ids=["constant", "annealed"])
def test_smoke_run_distills_the_teacher(tmp_path: Path, anneal: bool) -> None:
    overrides = [*SMOKE, "run.name=d", f"run.dir={tmp_path}", "eval.episodes=0", "agent.distill_coef=1.0"]
    overrides += ["agent.distill_rate=0.5", f"agent.distill_anneal={str(anneal).lower()}"]
    result = train(load_train_config(CONFIG_DIR, ["agent=ppo_mlp", *overrides]))
    assert result.timesteps == 256
    tags = ["train/distill_labels_seen", "train/distill_loss", "train/distill_weight"]
    scalars = read_scalars(tmp_path / "d" / "tb", tags)
    seen = scalars["train/distill_labels_seen"][1].max()  # logged after the first 128-step rollout
    assert 30 < seen < 100  # about half of those steps advised
    assert np.isfinite(scalars["train/distill_loss"][1]).all()
    if anneal:  # the fit after the first rollout (128 of 256 steps) runs at half the weight
        assert scalars["train/distill_weight"][1][0] == pytest.approx(0.5)
    else:
        assert "train/distill_weight" not in scalars


def test_expert_advice_switches_teacher_and_back() -> None:
    rules = OvertakingDriver()
    env = ExpertAdvice(make_env(KINEMATICS, RewardConfig()), rules)
    env.teach_with(PlannerParams(horizon=2, override_cost=15.0, reach=100.0))
    planner = env.driver
    assert isinstance(planner, LookaheadPlanner) and planner.driver is rules
    assert (planner.horizon, planner.override_cost, planner.reach) == (2, 15.0, 100.0)
    env.reset(seed=3)
    _, _, _, _, info = env.step(1)
    assert info["expert_action"] in range(5)
    env.teach_with(None)
    assert env.driver is rules
    with pytest.raises(TypeError, match="PlannerParams"):
        env.teach_with({"horizon": 2})
    env.close()


@pytest.mark.parametrize(("distill_expert", "planned"), [("lookahead", True), ("null", False)])
def test_ppo_teacher_can_differ_from_the_warm_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, distill_expert: str, planned: bool
) -> None:
    calls = []
    act = LookaheadPlanner.act
    monkeypatch.setattr(LookaheadPlanner, "act", lambda self, env: calls.append(1) or act(self, env))
    overrides = [*SMOKE, "run.name=d", f"run.dir={tmp_path}", "eval.episodes=0", "agent.n_envs=1"]
    overrides += ["agent.distill_coef=1.0", "agent.distill_rate=0.1", f"agent.distill_expert={distill_expert}"]
    overrides += ["imitation.expert=rules", "imitation.lookahead_horizon=1", "imitation.lookahead_reach=60"]
    train(load_train_config(CONFIG_DIR, ["agent=ppo_mlp", *overrides]))
    seen = read_scalars(tmp_path / "d" / "tb", ["train/distill_labels_seen"])["train/distill_labels_seen"][1]
    assert seen.max() > 0
    assert (len(calls) > 0) == planned  # labels from the planner only where it was asked for
