"""The clone probe: heads fitted with and without the ego's speed, on synthetic and on camera data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.clone_probe import VARIANTS, fit_head, probe, same_effect, speed_column, target_index_columns
from agents.config import ImitationConfig
from agents.imitation import record, split
from agents.vec_env import make_vec_env
from envs import EnvConfig, RewardConfig
from envs.config import SafetyConfig
from envs.drivers import DriverParams
from envs.safety_monitor import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER
from perception import FramesExtractor
from tests.conftest import SMOKE, assert_not_blank, run_script

FAST = ImitationConfig(epochs=20, batch_size=64, learning_rate=3e-3, holdout=0.2)


def test_the_speed_column_tells_apart_what_the_frames_cannot() -> None:
    # Features are noise; the teacher brakes above 25 m/s and speeds up below: only the speed decides.
    rng = np.random.default_rng(0)
    features = torch.as_tensor(rng.normal(size=(2000, 8)), dtype=torch.float32)
    speeds = rng.uniform(20, 30, 2000)
    actions = torch.as_tensor(np.where(speeds > 25, 4, 3))
    blind = fit_head(features, actions, FAST, hidden=[32, 32])
    seeing = fit_head(torch.cat([features, speed_column(list(speeds))], 1), actions, FAST, hidden=[32, 32])
    assert seeing["holdout_accuracy"] > 0.9 > blind["holdout_accuracy"] + 0.2, (blind, seeing)
    confusion = np.array(seeing["confusion"])
    assert confusion.shape == (5, 5)
    assert confusion.sum() == pytest.approx(0.2 * 2000, abs=60) and confusion[:3].sum() == 0


@pytest.mark.parametrize(
    ("a", "b", "index", "alike"),
    [
        (FASTER, IDLE, 2, True),  # already at the top target speed
        (FASTER, IDLE, 1, False),
        (SLOWER, IDLE, 0, True),  # already at the lowest
        (SLOWER, IDLE, 2, False),
        (FASTER, SLOWER, 1, False),
        (LANE_LEFT, IDLE, 2, False),
        (LANE_LEFT, LANE_RIGHT, 1, False),
        (LANE_RIGHT, LANE_RIGHT, 0, True),
    ],
)
def test_same_effect(a: int, b: int, index: int, alike: bool) -> None:
    assert same_effect(np.array([a]), np.array([b]), np.array([index]))[0] == alike
    assert same_effect(np.array([b]), np.array([a]), np.array([index]))[0] == alike


def test_speed_inputs_need_every_sample() -> None:
    with pytest.raises(ValueError, match="ego_speeds"):
        speed_column([25.0, float("nan")])
    with pytest.raises(ValueError, match="speed_indices"):
        target_index_columns([1, -1])
    assert target_index_columns([0, 2]).tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="differ in length"):
        fit_head(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long), FAST, hidden=[4])


def test_probe_on_the_teachers_camera_frames() -> None:
    venv = make_vec_env(EnvConfig(), RewardConfig(), 1, seed=5, safety=SafetyConfig(), expert=DriverParams())
    try:
        demos, tally = record(venv, steps=24, gamma=0.8)
        extractor = FramesExtractor(venv.observation_space, features_dim=16)
    finally:
        venv.close()
    assert_not_blank(demos.obs[-1])
    assert tally.summary()["expert_agreement"] == 1.0
    assert all(15.0 < s < 35.0 for s in demos.ego_speeds) and set(demos.speed_indices) <= {0, 1, 2}
    report = probe(extractor, demos, ImitationConfig(epochs=2, holdout=0.25), hidden=[16, 8])
    assert report["samples"] == 24
    for name in VARIANTS:
        r = report[name]
        assert 0.0 <= r["holdout_accuracy"] <= r["holdout_same_effect"] <= 1.0
        assert sum(map(sum, report[name]["confusion"])) == len(split(24, 0.25, 0)[0])


def test_clone_probe_script(tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    proc = run_script("clone_probe.py", "--steps", "20", "--out", str(out), *SMOKE)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["samples"] == 20 and report["teacher_driving"]["expert_agreement"] == 1.0
    assert "frames+speed+target" in proc.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["agent=ppo_mlp"], "agent: the probe needs the camera policy"),
        (["perception.checkpoint=nowhere.pt"], "perception.checkpoint: "),
        (["run.nope=1"], "run.nope"),
    ],
)
def test_clone_probe_user_errors(args: list[str], fragment: str) -> None:
    proc = run_script("clone_probe.py", "--steps", "20", *args)
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
