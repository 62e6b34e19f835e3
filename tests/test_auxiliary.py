"""The auxiliary scene-fact regression: the facts read off the simulator, the fit, and its wiring."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.auxiliary import FactRegression, FactsHead, explained_variance
from agents.config import ImitationConfig, load_train_config
from agents.imitation import Demonstrations, fit
from agents.plots import read_scalars
from agents.schema import ConfigError
from agents.training import train
from envs import EnvConfig, RewardConfig, make_env
from envs.facts import FACT_NAMES, SceneFacts, scene_facts
from perception import FramesExtractor
from tests.conftest import CONFIG_DIR, SMOKE, DrawnEnv, assert_not_blank, scene

N_FACTS = len(FACT_NAMES)


def facts_of(env) -> dict[str, float]:
    return dict(zip(FACT_NAMES, scene_facts(env).tolist(), strict=True))


def test_facts_read_gaps_and_closing_speeds_in_each_lane() -> None:
    # Ego at x=100 m, 25 m/s, middle lane; cars are 5 m long, so bumper gaps are 5 m shorter.
    env, _ = scene(1, 25.0, [(1, 130.0, 20.0), (0, 90.0, 30.0), (2, 300.0, 25.0), (2, 115.0, 27.0)])
    facts = facts_of(env)
    assert facts["front_gap"] == pytest.approx(25 / 50) and facts["front_closing"] == pytest.approx(0.5)
    assert facts["left_front_gap"] == 1.0 and facts["left_front_closing"] == 0.0  # nobody ahead on the left
    assert facts["left_rear_gap"] == pytest.approx(5 / 20) and facts["left_rear_closing"] == pytest.approx(0.5)
    assert facts["right_front_gap"] == pytest.approx(10 / 50) and facts["right_front_closing"] == pytest.approx(-0.2)
    assert facts["right_rear_gap"] == 1.0 and facts["right_rear_closing"] == 0.0
    assert facts["ego_speed"] == pytest.approx(0.5)


def test_facts_cap_distant_cars_and_block_missing_lanes() -> None:
    env, _ = scene(0, 30.0, [(0, 200.0, 20.0), (1, 60.0, 40.0)])  # 95 m ahead; 35 m behind on the right
    facts = facts_of(env)
    assert facts["front_gap"] == 1.0 and facts["front_closing"] == 0.0  # beyond the camera's reach
    assert facts["right_rear_gap"] == 1.0  # beyond 20 m behind
    assert facts["left_front_gap"] == facts["left_rear_gap"] == 0.0  # no lane left of lane 0
    assert facts["ego_speed"] == pytest.approx(1.0)


def test_scene_facts_wrapper_reports_the_state_each_observation_shows() -> None:
    env = SceneFacts(make_env(EnvConfig(), RewardConfig()))
    obs, info = env.reset(seed=3)
    assert_not_blank(obs)
    assert info["scene_facts"].shape == (N_FACTS,) and info["scene_facts"].dtype == np.float32
    np.testing.assert_array_equal(info["scene_facts"], scene_facts(env))
    for _ in range(3):
        obs, _, terminated, truncated, info = env.step(3)
        np.testing.assert_array_equal(info["scene_facts"], scene_facts(env))
        assert np.isfinite(info["scene_facts"]).all() and not (terminated or truncated)
    with pytest.raises(TypeError, match="highway-env"):
        SceneFacts(gym.make("CartPole-v1"))


class LinearFactsEnv(DrawnEnv):
    """Observation x ~ U(-1, 1)^4; its facts (in the info of the step or reset that produced it) are a
    fixed linear map of x; reward 0; episodes of 5 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    LENGTH = 5
    MAP = np.random.default_rng(0).normal(size=(4, N_FACTS)).astype(np.float32) / 2

    def _draw(self) -> tuple[np.ndarray, dict]:
        x = self.np_random.uniform(-1, 1, 4).astype(np.float32)
        return x, {"scene_facts": x @ self.MAP}


def test_fact_regression_learns_the_facts_of_the_states_reached() -> None:
    model = PPO("MlpPolicy", DummyVecEnv([LinearFactsEnv] * 2), n_steps=32, batch_size=32, n_epochs=1, seed=0)
    head = FactsHead(4)  # MlpPolicy's features are the observation itself
    callback = FactRegression(head, 1.0, memory=512, batch_size=64, learning_rate=1e-2)
    model.learn(2048, callback=callback)
    assert callback.collected == 2048  # every step, episode ends included (their facts are the reset's)
    obs, facts = np.array(callback.obs), np.array(callback.labels)
    np.testing.assert_allclose(facts, obs @ LinearFactsEnv.MAP, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        predicted = head(torch.as_tensor(obs)).numpy()
    assert min(explained_variance(predicted, facts).values()) > 0.9


@pytest.mark.parametrize("final", [None, 0.0, 2e-3], ids=["constant", "to-zero", "to-a-fifth"])
def test_fact_regression_follows_the_ppo_learning_rate_schedule(final: float | None) -> None:
    lr = 1e-2 if final is None else LinearSchedule(1e-2, final, end_fraction=1.0)
    model = PPO("MlpPolicy", DummyVecEnv([LinearFactsEnv]), learning_rate=lr, n_steps=32, batch_size=32, n_epochs=1)
    callback = FactRegression(FactsHead(4), 1.0, memory=64, batch_size=32, learning_rate=3e-3)
    model.learn(96, callback=callback)
    ppo_lr = model.policy.optimizer.param_groups[0]["lr"]
    aux_lr = callback.optimizer().param_groups[0]["lr"]
    if final is None:
        assert ppo_lr == 1e-2 and aux_lr == 3e-3
    else:  # the last update ran at the end of the line; the regression's fit after it, in proportion
        assert ppo_lr == pytest.approx(final) and aux_lr == pytest.approx(3e-3 * final / 1e-2)


def test_fact_regression_trains_the_extractor_but_not_a_frozen_backbone() -> None:
    env = DummyVecEnv([lambda: SceneFacts(make_env(EnvConfig(), RewardConfig()))])
    kwargs = {
        "features_extractor_class": FramesExtractor,
        "features_extractor_kwargs": {"features_dim": 16, "freeze": True},
        "normalize_images": False,
    }
    model = PPO("CnnPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, policy_kwargs=kwargs)
    extractor = model.policy.features_extractor
    backbone = [p.detach().clone() for p in extractor.backbone.parameters()]
    last = [p.detach().clone() for p in extractor.head.parameters()]
    callback = FactRegression(FactsHead(16), 1.0, memory=64, batch_size=16)
    model.learn(32, callback=callback)
    assert callback.collected == 32 and callback.fit() is not None
    assert all(torch.equal(a, b) for a, b in zip(backbone, extractor.backbone.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(last, extractor.head.parameters(), strict=True))


def demos_with_facts(n: int, facts: bool = True) -> Demonstrations:
    rng = np.random.default_rng(1)
    demos = Demonstrations()
    for _ in range(n):
        x = rng.uniform(-1, 1, 4).astype(np.float32)
        demos.obs.append(x)
        demos.actions.append(3 if x[0] > 0 else 4)
        demos.returns.append(float(x[1]))
        demos.facts.append(x @ LinearFactsEnv.MAP if facts else np.full(N_FACTS, np.nan, np.float32))
    return demos


def test_warm_start_fit_regresses_the_facts_and_reports_them() -> None:
    model = PPO("MlpPolicy", DummyVecEnv([LinearFactsEnv]), seed=0)
    cfg = ImitationConfig(steps=1, epochs=30, batch_size=64, learning_rate=1e-2)
    report = fit(model.policy, demos_with_facts(1000), cfg, aux=(FactsHead(4), 1.0))
    assert report["holdout_accuracy"] > 0.9
    assert set(report["facts_r2"]) == set(FACT_NAMES) and min(report["facts_r2"].values()) > 0.9
    assert report["aux_loss"] < 0.05
    assert "facts_r2" not in fit(model.policy, demos_with_facts(200), cfg)  # no head, no report
    with pytest.raises(ValueError, match="scene facts"):
        fit(model.policy, demos_with_facts(50, facts=False), cfg, aux=(FactsHead(4), 1.0))


@pytest.mark.parametrize("override", ["agent.aux_coef=-0.5", "agent.aux_memory=0"])
def test_aux_config_errors(override: str) -> None:
    with pytest.raises(ConfigError, match=override.split("=")[0].split(".")[1]):
        load_train_config(CONFIG_DIR, [override])


def test_aux_needs_the_cnn_policy() -> None:
    with pytest.raises(ConfigError, match="aux_coef: needs agent.policy=cnn"):
        load_train_config(CONFIG_DIR, ["agent=ppo_mlp", "agent.aux_coef=1.0"])


def test_smoke_run_with_the_auxiliary_regression(tmp_path: Path) -> None:
    overrides = [*SMOKE, "run.name=a", f"run.dir={tmp_path}", "eval.episodes=0", "agent.aux_coef=1.0"]
    overrides += ["imitation.steps=64", "agent.features_dim=32"]
    result = train(load_train_config(CONFIG_DIR, overrides))
    assert result.timesteps == 256
    scalars = read_scalars(tmp_path / "a" / "tb", ["train/aux_loss", "train/aux_labels_seen"])
    assert scalars["train/aux_labels_seen"][1].max() == 128  # logged after the first 128-step rollout
    assert np.isfinite(scalars["train/aux_loss"][1]).all()
    clone = json.loads((tmp_path / "a" / "imitation.json").read_text())["clone"]
    assert set(clone["facts_r2"]) == set(FACT_NAMES) and np.isfinite(clone["aux_loss"])
