"""Learning from the safety monitor's corrections: labels, the fit, and a training run with it."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.config import load_train_config
from agents.corrections import CorrectionLearning, correction_label, monitored_label
from agents.plots import read_scalars
from agents.schema import ConfigError
from agents.training import train
from envs.safety_monitor import FASTER, IDLE, LANE_LEFT, SLOWER
from tests.conftest import CONFIG_DIR, SMOKE


def safety(proposed: int, executed: int, overridden: bool = True, braking: int = 0) -> dict:
    return {
        "overridden": overridden,
        "proposed_action": proposed,
        "executed_action": executed,
        "emergency_braking": braking,
    }


@pytest.mark.parametrize(
    "info, label",
    [
        (None, None),  # an env without the monitor
        (safety(FASTER, FASTER, overridden=False), None),
        (safety(FASTER, IDLE), IDLE),  # refused: the replacement is the label
        (safety(LANE_LEFT, SLOWER, braking=3), SLOWER),  # refused and braked: still the replacement
        (safety(IDLE, IDLE, braking=2), SLOWER),  # accepted, then the emergency brake fired
        (safety(SLOWER, SLOWER, braking=2), None),  # the policy already chose the mitigation
        (safety(IDLE, IDLE), None),  # an abort or a swerve: it corrected an earlier decision
    ],
    ids=["unmonitored", "accepted", "refused", "refused-and-braked", "braked", "braked-after-slower", "abort"],
)
def test_correction_label(info: dict | None, label: int | None) -> None:
    assert correction_label(info) == label


@pytest.mark.parametrize(
    "info, label",
    [
        (None, None),
        (safety(FASTER, FASTER, overridden=False), FASTER),  # accepted: the policy's own action
        (safety(FASTER, IDLE), IDLE),
        (safety(IDLE, IDLE, braking=2), SLOWER),
        (safety(SLOWER, SLOWER, braking=2), SLOWER),  # the brake backed the policy's SLOWER
        (safety(IDLE, IDLE), None),  # an abort or a swerve
    ],
    ids=["unmonitored", "accepted", "refused", "braked", "braked-after-slower", "abort"],
)
def test_monitored_label(info: dict | None, label: int | None) -> None:
    assert monitored_label(info) == label


class OverrulingEnv(gym.Env):
    """Reward 0 whatever the action; a monitor-like info replaces every action but SLOWER by SLOWER."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(5)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        info = {"safety": safety(int(action), SLOWER, overridden=int(action) != SLOWER)}
        return self.observation_space.sample(), 0.0, False, False, info


def slower_probability(model: PPO) -> float:
    obs = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (64, 3)), dtype=torch.float32)
    with torch.no_grad():
        return float(model.policy.get_distribution(obs).distribution.probs[:, SLOWER].mean())


@pytest.mark.parametrize("coef", [0.0, 2.0], ids=["without", "with"])
def test_policy_learns_the_monitors_action(coef: float) -> None:
    model = PPO("MlpPolicy", OverrulingEnv(), learning_rate=3e-3, n_steps=32, batch_size=32, n_epochs=1, seed=0)
    before = slower_probability(model)
    callback = CorrectionLearning(coef, memory=128, batch_size=32) if coef else None
    model.learn(512, callback=callback)
    after = slower_probability(model)
    if coef:
        assert callback.collected > 128 and len(callback.obs) == len(callback.labels) == 128  # the latest only
        assert after > 0.6 > before
    else:  # the reward alone carries no preference
        assert abs(after - before) < 0.15


class SometimesOverrulingEnv(gym.Env):
    """Observation 1 or -1 at random; on 1 a monitor-like info replaces every action but SLOWER by SLOWER,
    on -1 it accepts the action. Reward 0 whatever happens."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(5)

    def _draw(self) -> np.ndarray:
        self.flag = self.np_random.random() < 0.3
        return np.array([1.0 if self.flag else -1.0], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action):
        overrule = self.flag and int(action) != SLOWER
        info = {"safety": safety(int(action), SLOWER if overrule else int(action), overridden=overrule)}
        return self._draw(), 0.0, False, False, info


def test_two_sided_fit_keeps_accepted_states_and_learns_corrected_ones() -> None:
    model = PPO(
        "MlpPolicy", SometimesOverrulingEnv(), learning_rate=3e-3, n_steps=32, batch_size=32, n_epochs=1, seed=0
    )
    callback = CorrectionLearning(2.0, memory=512, batch_size=32, two_sided=True)
    model.learn(1024, callback=callback)
    assert callback.collected == 1024  # every step is labelled: the corrected and the accepted ones
    labels = np.array(callback.labels)
    assert 0.2 < np.mean(labels == SLOWER) < 0.55  # corrections (30 % of states) plus the policy's own SLOWERs
    with torch.no_grad():
        probs = model.policy.get_distribution(torch.tensor([[1.0], [-1.0]])).distribution.probs
    assert probs[0, SLOWER] > 0.6  # corrected state: the monitor's action
    assert probs[1, SLOWER] < 0.4  # accepted state: not pulled toward SLOWER


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"coef": 0.0}, "coef"), ({"coef": 1.0, "memory": 0}, "memory"), ({"coef": 1.0, "batch_size": 0}, "batch")],
)
def test_correction_learning_rejects_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        CorrectionLearning(**kwargs)


@pytest.mark.parametrize(
    "override", ["agent.correction_coef=-1", "agent.correction_memory=0", "agent.correction_two_sided=true"]
)
def test_correction_config_errors(override: str) -> None:
    with pytest.raises(ConfigError, match=override.split("=")[0].split(".")[1]):
        load_train_config(CONFIG_DIR, [override])


@pytest.mark.parametrize("two_sided", [False, True], ids=["one-sided", "two-sided"])
def test_smoke_run_learns_corrections(tmp_path: Path, two_sided: bool) -> None:
    overrides = [*SMOKE, "run.name=c", f"run.dir={tmp_path}", "eval.episodes=0", "agent.correction_coef=1.0"]
    overrides.append(f"agent.correction_two_sided={str(two_sided).lower()}")
    result = train(load_train_config(CONFIG_DIR, ["agent=ppo_mlp", *overrides]))
    assert result.timesteps == 256
    scalars = read_scalars(tmp_path / "c" / "tb", ["train/corrections_seen", "train/correction_loss"])
    seen = scalars["train/corrections_seen"][1].max()  # logged after the first 128-step rollout
    if two_sided:
        assert seen >= 120  # every monitored step but aborts and swerves
    else:
        assert 0 < seen < 120  # an untrained policy gets corrected, not on every step
    assert np.isfinite(scalars["train/correction_loss"][1]).all()
