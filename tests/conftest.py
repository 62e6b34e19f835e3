from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
SMOKE = ["preset=smoke"]


def run_script(script: str, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``scripts/<script>`` as a user would, capturing output."""
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def config_dir() -> Path:
    return CONFIG_DIR


def assert_not_blank(frames) -> None:
    """Camera frames must show the road: SDL's dummy driver would give all zeros."""
    import numpy as np

    last = np.asarray(frames)[-1]
    assert last.max() > 0 and last.std() > 5, "camera frame is blank"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run (model.zip, config.yaml, tb/) shared by the evaluation tests."""
    from agents.config import load_train_config
    from agents.training import train

    runs = tmp_path_factory.mktemp("runs")
    overrides = [*SMOKE, "run.name=shared", f"run.dir={runs}", "agent.n_envs=1", "eval.episodes=1"]
    return train(load_train_config(CONFIG_DIR, overrides)).run_dir


def scene(ego_lane: int, ego_speed: float, others: list[tuple[int, float, float]], cfg=None, reward=None):
    """An env with the ego at x=100 m and scripted traffic at (lane, x, speed), and its monitor (None if disabled).

    ``cfg``: the monitor's SafetyConfig (default thresholds if None); ``reward``: the RewardConfig."""
    import numpy as np

    from envs import EnvConfig, RewardConfig, make_env
    from envs.config import SafetyConfig
    from envs.scenarios import ScriptedVehicle

    env = make_env(EnvConfig(observation="kinematics"), reward or RewardConfig(), safety=cfg or SafetyConfig())
    env.reset(seed=0)
    base = env.unwrapped
    ego = base.vehicle
    lane = base.road.network.get_lane(("0", "1", ego_lane))
    ego.position, ego.heading, ego.speed = lane.position(100.0, 0), 0.0, ego_speed
    ego.lane_index = ego.target_lane_index = ("0", "1", ego_lane)
    ego.speed_index = int(np.argmin(np.abs(ego.target_speeds - ego_speed)))
    ego.target_speed = ego.target_speeds[ego.speed_index]
    base.road.vehicles = [ego]
    for lane_id, x, speed in others:
        side = base.road.network.get_lane(("0", "1", lane_id))
        base.road.vehicles.append(ScriptedVehicle(base.road, side.position(x, 0), speed))
    return env, monitor_of(env) if (cfg is None or cfg.enabled) else None


def monitor_of(env):
    """The SafetyMonitor in a wrapper stack."""
    from envs.safety_monitor import SafetyMonitor

    while not isinstance(env, SafetyMonitor):
        env = env.env
    return env


class DrawnEnv(gym.Env):
    """A fake env: every observation and its info come from ``_draw()``; episodes of ``LENGTH`` steps; reward 0."""

    LENGTH = 4
    action_space = gym.spaces.Discrete(5)

    def _draw(self) -> tuple:
        raise NotImplementedError

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._draw()

    def step(self, action):
        self.t += 1
        obs, info = self._draw()
        return obs, 0.0, self.t == self.LENGTH, False, info
