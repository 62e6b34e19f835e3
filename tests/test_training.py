"""Smoke training runs: outputs, resume, interruption and checkpoint mismatch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agents.callbacks import latest_checkpoint
from agents.config import load_train_config
from agents.plots import read_scalars
from agents.ppo import load_ppo
from agents.schema import ConfigError
from agents.training import train
from tests.conftest import CONFIG_DIR, ROOT, SMOKE, run_script


def test_smoke_run_writes_every_output(tmp_path: Path) -> None:
    proc = run_script("train_agent.py", *SMOKE, "run.name=smoke", f"run.dir={tmp_path}", "reward=cautious")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "smoke"
    for name in ("model.zip", "config.yaml", "summary.json"):
        assert (run / name).is_file(), name
    assert latest_checkpoint(run / "checkpoints") is not None
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    curves = read_scalars(run / "tb", ["rollout/mean_speed", "rollout/intervention_rate"])
    assert curves["rollout/mean_speed"][1].min() > 0
    assert 0.0 <= curves["rollout/intervention_rate"][1].min() <= curves["rollout/intervention_rate"][1].max() <= 1.0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert list(saved) == [
        "env", "reward", "safety", "faults", "agent", "perception", "imitation", "driver", "shield", "run", "eval"
    ]  # fmt: skip
    assert saved["reward"]["collision"] == -5.0 and saved["run"]["name"] == "smoke"
    summary = json.loads((run / "summary.json").read_text())
    ev = summary["eval"]
    assert summary["timesteps"] >= 256
    assert ev["episodes"] == 2 and 0.0 <= ev["collision_rate"] <= 1.0 and ev["mean_speed"] > 0
    assert min(ev["seeds"]) >= 1_000_000  # held out from training seeds
    for line in ("return", "crash rate", "mean speed"):
        assert line in proc.stdout
    assert not list(run.rglob("*.tmp")), "no temp files left behind"
    # The saved config alone reproduces the run's config.


def test_smoke_run_with_intra_decision_frames(tmp_path: Path) -> None:
    """Warm start, PPO in subprocess envs and the final evaluation all see the extra frame."""
    overrides = [*SMOKE, "run.name=intra", f"run.dir={tmp_path}", "env.intra_frames=[0.4]", "eval.episodes=1"]
    result = train(load_train_config(CONFIG_DIR, [*overrides, "imitation.steps=64"]))
    from stable_baselines3 import PPO

    assert PPO.load(str(result.run_dir / "model.zip"), device="cpu").observation_space.shape == (5, 128, 64)
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["env"]["intra_frames"] == [0.4]
    proc = run_script("evaluate.py", f"run={result.run_dir}", "episodes=1", f"out={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["episodes"] == 1


def test_training_densities_reach_the_training_envs_and_not_the_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents import training

    built: dict[str, list] = {"train": [], "eval": []}
    make_vec_env, make_env = training.make_vec_env, training.make_env

    def train_envs(*args, **kwargs):
        built["train"].append(kwargs["densities"])
        return make_vec_env(*args, **kwargs)

    def eval_env(env_cfg, *args, **kwargs):
        built["eval"].append(env_cfg.vehicles_density)
        return make_env(env_cfg, *args, **kwargs)

    monkeypatch.setattr(training, "make_vec_env", train_envs)
    monkeypatch.setattr(training, "make_env", eval_env)
    overrides = [*SMOKE, "run.name=dense", f"run.dir={tmp_path}", "agent.train_densities=[1.0,1.5]", "eval.episodes=1"]
    result = train(load_train_config(CONFIG_DIR, overrides))
    assert built == {"train": [[1.0, 1.5]], "eval": [None]}
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["env"]["vehicles_density"] is None  # what an evaluation of the run builds
    assert saved["agent"]["train_densities"] == [1.0, 1.5]


def test_resume_continues_step_count(tmp_path: Path) -> None:
    where = ["run.name=r", f"run.dir={tmp_path}"]
    base = [*SMOKE, *where, "agent.n_envs=1", "eval.episodes=0"]
    first = train(load_train_config(CONFIG_DIR, base))
    assert first.timesteps == 256
    with pytest.raises(ConfigError, match="already exists"):
        train(load_train_config(CONFIG_DIR, base))
    with pytest.raises(ConfigError, match="cannot swap a config group"):
        load_train_config(CONFIG_DIR, [*where, "resume=true", "reward=speed"])
    resumed = train(load_train_config(CONFIG_DIR, [*where, "resume=true", "agent.total_timesteps=384"]))
    assert resumed.timesteps == 384
    assert resumed.summary["resumed"] is True
    # One TensorBoard run, continued rather than restarted.
    assert [p.name for p in (tmp_path / "r" / "tb").iterdir()] == ["PPO_1"]


def test_learning_rate_falls_linearly_and_resume_continues_the_line(tmp_path: Path) -> None:
    where = ["run.name=lr", f"run.dir={tmp_path}"]
    overrides = [*SMOKE, *where, "agent.n_envs=1", "eval.episodes=0", "agent.total_timesteps=128"]
    overrides += ["agent.n_steps=32", "agent.learning_rate=1e-3", "agent.learning_rate_final=0"]
    train(load_train_config(CONFIG_DIR, overrides))
    train(load_train_config(CONFIG_DIR, [*where, "resume=true", "agent.total_timesteps=256"]))
    steps, rates = read_scalars(tmp_path / "lr" / "tb", ["train/learning_rate"])["train/learning_rate"]
    # SB3 writes an update's rate with the next rollout's logs (none after the last update of a call): the
    # rate logged at step s is the one the update after step s - 32 ran with, 1 - (s - 32) / total of the way.
    assert steps.tolist() == [64, 96, 128, 192, 224, 256]
    expected = [1e-3 * (1 - (s - 32) / 128) for s in steps[:3]] + [1e-3 * (1 - (s - 32) / 256) for s in steps[3:]]
    assert rates.tolist() == pytest.approx(expected, abs=1e-9)
    model = load_ppo(tmp_path / "lr" / "model.zip", None, load_train_config(CONFIG_DIR, []).agent)
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.0) == 0.0


def test_resume_rejects_mismatched_checkpoint(tmp_path: Path) -> None:
    where = ["run.name=m", f"run.dir={tmp_path}"]
    train(load_train_config(CONFIG_DIR, [*SMOKE, *where, "agent.n_envs=1", "eval.episodes=0"]))
    with pytest.raises(ConfigError, match="does not fit this env"):
        train(
            load_train_config(
                CONFIG_DIR,
                [*where, "resume=true", "env.frame_stack=2", "agent.total_timesteps=512"],
            )
        )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_kill_leaves_loadable_checkpoint(tmp_path: Path, sig: signal.Signals) -> None:
    args = [
        *SMOKE,
        "agent.total_timesteps=100000",
        "run.checkpoint_every=100000",
        "run.name=k",
        f"run.dir={tmp_path}",
    ]
    # A new session, so that SIGINT can go to the whole process group, as Ctrl-C does.
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train_agent.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    ckpt_dir = tmp_path / "k" / "tb"
    deadline = time.monotonic() + 120
    while not ckpt_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(4)  # well into training, far before any periodic checkpoint
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert "resume=true" in err and "Traceback" not in err
    checkpoint = latest_checkpoint(tmp_path / "k" / "checkpoints")
    assert checkpoint is not None
    cfg = load_train_config(CONFIG_DIR, ["run.name=k", f"run.dir={tmp_path}", "resume=true"])
    model = load_ppo(checkpoint, None, cfg.agent)
    assert 0 < model.num_timesteps < 100000
    assert not (tmp_path / "k" / "model.zip").exists(), "an interrupted run has no final model"
