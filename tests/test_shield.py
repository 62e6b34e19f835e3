"""The learned shield: per-action risk labels (envs/action_risks.py), the veto (agents/shield.py) and its fit
(agents/shield_fit.py), down to a trained run that evaluates through it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIG_DIR, run_script, scene

from agents.config import ShieldConfig
from agents.policies import AgentPolicy
from agents.schema import ConfigError
from agents.shield import (
    SHIELD_FILE,
    Shield,
    ShieldFileError,
    ShieldHead,
    ShieldNet,
    load_shield,
    save_shield,
    shielded_choice,
)
from agents.shield_fit import collect_labelled, collection_env, fit_head, load_shield_job
from agents.vec_env import make_vec_env
from envs import EnvConfig, RewardConfig, make_env
from envs.action_risks import ActionRisks, RiskSpec, monitor_refusals, replay_risks
from envs.config import SafetyConfig
from envs.drivers import DriverParams, OvertakingDriver
from envs.safety_monitor import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER, ActionChecker


@pytest.mark.parametrize(
    ("logits", "risks", "expected"),
    [
        ([0, 1, 0, 5, 2], [0.9, 0.1, 0.9, 0.2, 0.0], (FASTER, False)),  # its first choice is safe
        ([0, 1, 0, 5, 2], [0.9, 0.1, 0.9, 0.8, 0.0], (SLOWER, True)),  # vetoed: its next best safe one
        ([3, 1, 0, 5, 2], [0.4, 0.6, 0.9, 0.8, 0.7], (LANE_LEFT, True)),  # a lane change can be the way out
        ([0, 1, 0, 5, 2], [0.9, 0.7, 0.9, 0.8, 0.6], (SLOWER, True)),  # none safe: the least risky
    ],
)
def test_the_veto_keeps_the_policys_order_among_safe_actions(logits: list, risks: list, expected: tuple) -> None:
    assert shielded_choice(np.array(logits, float), np.array(risks), 0.5) == expected


@pytest.mark.parametrize(
    ("others", "unsafe"),
    [
        ([], set()),  # an empty road, ego in the middle lane
        ([(1, 118.0, 15.0)], {IDLE, FASTER, SLOWER}),  # closing fast on a slow car: even 20 m/s is too close
        ([(1, 130.0, 20.0)], {FASTER}),  # 25 m behind a slower car: holding 25 m/s is fine, 30 is not
        ([(0, 100.0, 25.0)], {LANE_LEFT}),  # a car alongside on the left
        ([(2, 92.0, 28.0)], {LANE_RIGHT}),  # a fast follower on the right
    ],
)
def test_monitor_labels_are_the_monitors_refusals(others: list, unsafe: set) -> None:
    env, monitor = scene(1, 25.0, others)
    labels = monitor_refusals(ActionChecker(SafetyConfig()), env.unwrapped.vehicle)
    assert {a for a in range(5) if labels[a]} == unsafe
    for action in range(4):  # the same verdicts as the monitor's own check
        assert bool(labels[action]) == (monitor.check(action) is not None)


def test_replay_labels_see_which_actions_crash() -> None:
    env, _ = scene(1, 25.0, [(1, 125.0, 15.0), (0, 100.0, 25.0)])  # 20 m behind a slow car, a car on the left
    before = env.unwrapped.vehicle.position.copy()
    risks = replay_risks(env, horizon=3, reach=150.0)
    assert risks[FASTER] == risks[IDLE] == risks[LANE_LEFT] == 1.0
    assert risks[LANE_RIGHT] == 0.0  # the free lane is the way out
    np.testing.assert_array_equal(env.unwrapped.vehicle.position, before)  # copies only


def test_rules_continuation_finds_the_way_out_that_slower_cannot() -> None:
    # At SLOWER's 20-m/s floor, 25 m behind a car at 12 m/s, the lane alongside free: holding SLOWER
    # crashes whatever comes first, while the rules change lanes on the next decision.
    env, _ = scene(0, 20.0, [(0, 130.0, 12.0)])
    slower = replay_risks(env, horizon=8, reach=150.0)
    rules = replay_risks(env, horizon=8, reach=150.0, driver=OvertakingDriver())
    assert slower[IDLE] == slower[SLOWER] == slower[FASTER] == 1.0
    assert rules[IDLE] == rules[SLOWER] == 0.0
    assert rules[LANE_RIGHT] == slower[LANE_RIGHT] == 0.0  # out at once: safe either way


@pytest.mark.parametrize(
    ("source", "continuation"), [("monitor", "slower"), ("replay", "slower"), ("both", "slower"), ("both", "rules")]
)
def test_action_risks_label_every_state_on_camera_frames(source: str, continuation: str) -> None:
    env = make_env(EnvConfig(), RewardConfig(), safety=SafetyConfig())
    env = ActionRisks(env, source, SafetyConfig(), horizon=4, continuation=continuation, driver=DriverParams())
    obs, info = env.reset(seed=500_000)
    assert obs.std() > 0, "camera frames must not be blank"
    labels = [info["action_risks"]]
    for _ in range(3):
        obs, _, _, _, info = env.step(FASTER)
        labels.append(info["action_risks"])
    assert obs.std() > 0
    assert all(lab.shape == (5,) and set(np.unique(lab)) <= {0.0, 1.0} for lab in labels)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"source": "oracle"}, ValueError, "source"),
        ({"horizon": 0}, ValueError, "horizon"),
        ({"reach": -1.0}, ValueError, "reach"),
        ({"continuation": "planner"}, ValueError, "continuation"),
        ({"continuation": "rules", "driver": {"headway": 0.3}}, TypeError, "DriverParams"),
    ],
)
def test_action_risks_refuse_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    env = make_env(EnvConfig(observation="kinematics"), RewardConfig())
    with pytest.raises(error, match=match):
        ActionRisks(env, **kwargs)


def test_action_risks_need_a_highway_env() -> None:
    import gymnasium as gym

    with pytest.raises(TypeError, match="highway-env"):
        ActionRisks(gym.make("CartPole-v1"))


def test_fit_learns_a_rule_its_features_carry() -> None:
    rng = np.random.default_rng(0)
    features = torch.as_tensor(rng.normal(size=(2000, 8)), dtype=torch.float32)
    labels = torch.zeros(2000, 5)
    labels[:, FASTER] = (features[:, 0] > 0.3).float()  # FASTER unsafe when feature 0 is high
    labels[:, LANE_LEFT] = (features[:, 1] < -0.5).float()
    shield, report = fit_head(features, labels, ShieldConfig(steps=2000, epochs=100), seed=0)
    scores = report["held_out_scores"]
    assert report["held_out"] == 400 and shield.threshold == 0.5
    for name in ("FASTER", "LANE_LEFT"):
        assert scores[name]["precision"] > 0.9 and scores[name]["recall"] > 0.9
    assert scores["IDLE"]["recall"] is None  # never unsafe here


def test_a_saved_shield_loads_only_for_its_policy(tmp_path: Path) -> None:
    head = ShieldHead(16, hidden=8)
    path = save_shield(tmp_path / SHIELD_FILE, Shield(head, 0.3), {"states": 1})
    loaded = load_shield(path, 16)
    assert loaded.threshold == 0.3
    features = torch.randn(4, 16)
    torch.testing.assert_close(loaded.head(features), head(features))
    with pytest.raises(ShieldFileError, match="width 16"):
        load_shield(path, 32)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ShieldFileError, match="not a shield file"):
        load_shield(tmp_path / "junk.pt", 16)
    with pytest.raises(ShieldFileError, match="no such"):
        load_shield(tmp_path / "missing.pt", 16)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_frames_shield_saves_its_cnn_and_loads_only_for_frames_of_its_shape(tmp_path: Path) -> None:
    from perception.backbone import ConvBackbone

    net = ShieldNet(ConvBackbone(4, mean=0.2, std=0.3), (4, 128, 64), hidden=8)
    path = save_shield(tmp_path / SHIELD_FILE, Shield(net, 0.4), {"states": 1})
    loaded = load_shield(path, features_dim=256, obs_shape=(4, 128, 64))
    assert isinstance(loaded.head, ShieldNet) and loaded.threshold == 0.4
    frames = torch.randint(0, 255, (2, 4, 128, 64), dtype=torch.uint8)
    torch.testing.assert_close(loaded.head(frames), net(frames))  # the backbone's normalization came along
    with pytest.raises(ShieldFileError, match="frames of shape"):
        load_shield(path, features_dim=256, obs_shape=(5, 128, 64))


def test_a_frames_shield_learns_what_the_frames_show() -> None:
    from perception.backbone import ConvBackbone

    # FASTER is unsafe where a bright block sits in the upper half of the newest frame, as a car would ahead.
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, size=(400, 2, 32, 16), dtype=np.uint8)
    labels = torch.zeros(400, 5)
    for i in range(0, 400, 2):
        frames[i, -1, 4:12, 4:12] = 250
        labels[i, FASTER] = 1.0
    net = ShieldNet(ConvBackbone(2), (2, 32, 16), hidden=16)
    cfg = ShieldConfig(steps=400, epochs=15, learning_rate=1e-3, batch_size=32, reads="frames")
    shield, report = fit_head(torch.as_tensor(frames), labels, cfg, seed=0, head=net)
    scores = report["held_out_scores"]["FASTER"]
    assert shield.head is net and scores["precision"] > 0.9 and scores["recall"] > 0.9


class _VetoFirstChoice(torch.nn.Module):
    """A head that rates the policy's own first choice unsafe and everything else safe."""

    def __init__(self, policy, obs) -> None:
        super().__init__()
        self.first = int(policy.predict(obs, deterministic=True)[0])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = torch.full((features.shape[0], 5), -10.0)
        logits[:, self.first] = 10.0
        return logits


def test_the_agent_acts_through_its_shield(smoke_run: Path) -> None:
    from stable_baselines3 import PPO

    model = PPO.load(str(smoke_run / "model.zip"), device="cpu")
    env = make_env(EnvConfig(), RewardConfig())
    obs, _ = env.reset(seed=500_000)
    plain = AgentPolicy(model)
    first = plain(obs)
    shielded = AgentPolicy(model, shield=Shield(_VetoFirstChoice(model, obs), 0.5))
    second = shielded(obs)
    assert second != first and shielded.vetoed and not plain.vetoed
    logits = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0]).distribution.logits[0]
    order = torch.argsort(logits, descending=True).tolist()
    assert second == order[1]  # its second choice


class _Always:
    """A fake model: the same action in every env."""

    def __init__(self, action: int) -> None:
        self.action = action

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.full(len(obs), self.action), None


def test_collection_labels_the_states_the_policy_reaches() -> None:
    venv = make_vec_env(EnvConfig(), RewardConfig(), 1, 0, safety=SafetyConfig(), risks=RiskSpec("monitor", 3))
    try:
        observations, labels = collect_labelled(_Always(FASTER), venv, 12)
    finally:
        venv.close()
    assert observations.shape == (12, 4, 128, 64) and labels.shape == (12, 5)
    assert all(frame.std() > 0 for frame in observations), "camera frames must not be blank"
    assert labels[:, FASTER].any()  # always FASTER meets traffic the monitor refuses it into


@pytest.mark.parametrize(("collect", "crashes"), [("monitored", False), ("bare", True)])
def test_bare_collection_meets_the_crashes_the_monitor_prevents(collect: str, crashes: bool) -> None:
    from agents.config import load_train_config

    overrides = ["preset=smoke", "agent.n_envs=1", "shield=learned", f"shield.collect={collect}"]
    venv = collection_env(load_train_config(CONFIG_DIR, overrides))
    crashed = False
    try:
        obs = venv.reset()
        for _ in range(40):  # always FASTER reaches the traffic ahead within a few seconds
            obs, _, _, infos = venv.step(np.array([FASTER]))
            crashed |= bool(infos[0]["crashed"])
            assert "action_risks" in infos[0]
    finally:
        venv.close()
    assert obs[0].std() > 0, "camera frames must not be blank"
    assert crashed == crashes


def test_shield_states_are_collected_at_the_training_densities() -> None:
    from agents.config import load_train_config

    overrides = ["preset=smoke", "agent.n_envs=2", "agent.train_densities=[1.0,1.5]"]
    venv = collection_env(load_train_config(CONFIG_DIR, overrides))
    try:
        obs = venv.reset()
        densities = [c["vehicles_density"] for c in venv.get_attr("config")]
    finally:
        venv.close()
    assert densities == [1.0, 1.5]
    assert obs.std() > 0, "camera frames must not be blank"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        ([], "run"),
        (["run=/nonexistent/run"], "no model.zip"),
        (["run={run}", "agent.gamma=0.5"], "agent.gamma: only shield"),
        (["run={run}", "shield=none"], "shield.steps"),
        (["run={run}", "shield=learned", "shield.threshold=2"], "threshold"),
        (["run={run}", "shield=learned", "shield.continuation=planner"], "continuation"),
        (["run={run}", "shield=learned", "shield.collect=shadow"], "collect"),
        (["run={run}", "shield=learned", "shield.reads=pixels"], "reads"),
    ],
)
def test_fit_shield_job_refuses_bad_requests(smoke_run: Path, argv: list, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_shield_job(CONFIG_DIR, [a.format(run=smoke_run) for a in argv])


def test_training_ends_with_its_snapshots_and_shield_when_configured(tmp_path: Path) -> None:
    from agents.config import load_train_config
    from agents.training import train

    overrides = ["preset=smoke", "run.name=shielded", f"run.dir={tmp_path}", "eval.episodes=1", "agent.n_envs=1"]
    extras = ["shield=learned", "shield.steps=30", "shield.epochs=2", "agent.ensemble=2"]
    result = train(load_train_config(CONFIG_DIR, [*overrides, *extras]))
    assert (result.run_dir / SHIELD_FILE).is_file()
    assert json.loads((result.run_dir / "shield.json").read_text())["states"] == 30
    summary = result.summary
    assert summary["shield_s"] > 0 and summary["wall_time_s"] >= summary["shield_s"]
    assert "veto_rate" in summary["eval"]
    assert summary["snapshots"] == ["ckpt_000000128.zip"]  # smoke: 256 steps, a checkpoint every 128
    assert (result.run_dir / "snapshots" / "ckpt_000000128.zip").is_file()
    for snapshots in ("true", "false"):
        out = tmp_path / f"eval_{snapshots}"
        proc = run_script("evaluate.py", f"run={result.run_dir}", "episodes=1", f"snapshots={snapshots}", f"out={out}")
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_run_fits_a_shield_and_evaluates_through_it(smoke_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    labels = ["shield.source=both", "shield.horizon=4", "shield.continuation=rules"]
    proc = run_script("fit_shield.py", f"run={run}", "shield=learned", "shield.steps=40", "shield.epochs=3", *labels)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((run / "shield.json").read_text())
    assert report["states"] == 40 and report["source"] == "both" and report["continuation"] == "rules"
    for shield in ("true", "false"):
        out = tmp_path / f"eval_{shield}"
        proc = run_script("evaluate.py", f"run={run}", "episodes=1", f"learned_shield={shield}", f"out={out}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads((out / "metrics.json").read_text())["veto_rate"] >= 0.0
    (run / SHIELD_FILE).write_bytes(b"junk")
    proc = run_script("evaluate.py", f"run={run}", "episodes=1", f"out={tmp_path / 'bad'}")
    assert proc.returncode == 2 and "not a shield file" in proc.stderr and "Traceback" not in proc.stderr


def test_a_run_fits_a_frames_shield_and_evaluates_through_it(smoke_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    args = ["shield.reads=frames", "shield.collect=bare", "shield.steps=40", "shield.epochs=2"]
    proc = run_script("fit_shield.py", f"run={run}", "shield=learned", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((run / "shield.json").read_text())
    assert report["reads"] == "frames" and report["collect"] == "bare" and report["states"] == 40
    proc = run_script("evaluate.py", f"run={run}", "episodes=1", f"out={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["veto_rate"] >= 0.0
