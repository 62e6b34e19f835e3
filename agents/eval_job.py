"""An evaluation job: config -> env -> policy -> episodes (+ videos) -> metrics.json and CSV."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agents.config import EvalConfig
from agents.evaluation import EpisodeResult, eval_seeds, run_episode, summarize
from agents.policies import AgentPolicy, Policy, make_baseline
from agents.schema import ConfigError
from agents.shield import SHIELD_FILE, Shield, ShieldFileError, load_shield
from agents.snapshots import SNAPSHOT_DIR
from agents.suite import run_suite
from envs import make_env
from envs.io import write_json, write_text
from perception.model import load_checkpoint

PERCEPTION_COPY = "perception.pt"
"""The pretrained classifier a run was started from, copied into it so the HUD can show its predictions."""

CSV_FIELDS = list(EpisodeResult(seed=0).row())


def check_writable(directory: Path) -> None:
    """Fail early, with the path, if ``directory`` cannot hold our outputs."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"out: cannot write to {directory} ({err.strerror or err})") from None


def load_agent(run_dir: str | Path, env: Any, shield: bool = True, snapshots: bool = True) -> AgentPolicy:
    """The run's model, checked against the env's spaces, with its snapshots and learned shield when it has them.

    :param shield: apply the run's ``shield.pt`` if present (False: the policy without it)
    :param snapshots: let the run's ``snapshots/*.zip`` vote with the model (False: the final model alone)
    """
    path = Path(run_dir) / "model.zip"
    if not path.is_file():
        raise ConfigError(f"run: no model.zip in {run_dir}")
    model = _load_model(path, env)
    members = [_load_model(p, env) for p in sorted((Path(run_dir) / SNAPSHOT_DIR).glob("*.zip"))] if snapshots else []
    return AgentPolicy(model, load_classifier(run_dir), load_run_shield(run_dir, model) if shield else None, members)


def _load_model(path: Path, env: Any) -> Any:
    from stable_baselines3 import PPO

    try:
        model = PPO.load(str(path), device="cpu")
    except Exception as err:  # a truncated or foreign zip: SB3 raises several types
        raise ConfigError(f"run: cannot load {path} ({type(err).__name__})") from None
    if model.observation_space.shape != env.observation_space.shape:
        raise ConfigError(
            f"run: model {path} expects observations of shape {model.observation_space.shape}, "
            f"but this env config gives {env.observation_space.shape}"
        )
    return model


def load_run_shield(run_dir: str | Path, model: Any) -> Shield | None:
    """The run's learned shield, checked against its model; None if the run has none."""
    path = Path(run_dir) / SHIELD_FILE
    if not path.is_file():
        return None
    try:
        return load_shield(path, int(model.policy.features_dim), tuple(model.observation_space.shape))
    except ShieldFileError as err:
        raise ConfigError(f"run: {err}") from None


def load_classifier(run_dir: str | Path) -> tuple[Any, list[str]] | None:
    """The run's copy of its pretrained perception classifier, if it has one."""
    copy = Path(run_dir) / PERCEPTION_COPY
    if not copy.is_file():
        return None
    net, meta = load_checkpoint(copy)
    return net, list(meta["class_names"])


def make_policy(cfg: EvalConfig, env: Any) -> Policy:
    if cfg.policy == "agent":
        return load_agent(str(cfg.run), env, cfg.learned_shield, cfg.snapshots)
    return make_baseline(cfg.policy, int(env.action_space.n), cfg.driver, cfg.planner, cfg.guard)


def episodes_csv(results: list[EpisodeResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for r in results:
        writer.writerow(r.row())
    return buffer.getvalue()


def play(env: Any, policy: Policy, seeds: list[int], video: int, video_dir: Path) -> list[EpisodeResult]:
    """Run the episodes; the first ``video`` ones are recorded to ``video_dir``.

    Each video is finished in the background while the next episodes run; all are in
    place when this returns. If an episode fails, its video is dropped and the ones
    already played are still completed.
    """
    from agents.video import VideoRecorder

    results, pending = [], []
    try:
        for i, seed in enumerate(seeds):
            if i < video:
                recorder = VideoRecorder(env, video_dir / f"episode_{seed}.mp4", describe=policy.describe)
                try:
                    results.append(run_episode(env, policy, seed, on_step=recorder.on_step, on_reset=recorder.start))
                except BaseException:
                    recorder.discard()
                    raise
                pending.append(recorder.save_in_background())
            else:
                results.append(run_episode(env, policy, seed))
    except BaseException:
        for encoder in pending:
            with contextlib.suppress(Exception):  # the episode's error is the one to report
                encoder.wait()
        raise
    for encoder in pending:
        encoder.wait()
    return results


def run_evaluation(cfg: EvalConfig) -> tuple[dict[str, Any], Path]:
    """Evaluate ``cfg.policy`` and write ``metrics.json`` and ``episodes.csv``.

    :return: the metrics and the output dir
    :raises ConfigError: missing or mismatched model, unwritable output dir
    """
    out = cfg.out_dir()
    check_writable(out)
    render_mode = "rgb_array" if cfg.video else None
    env = make_env(cfg.env, cfg.reward, render_mode=render_mode, safety=cfg.safety, faults=cfg.faults, bare_replay=True)
    try:
        policy = make_policy(cfg, env)
        results = play(env, policy, eval_seeds(cfg.episodes, cfg.seed), cfg.video, out / "videos")
    finally:
        env.close()
    metrics = {
        "policy": cfg.policy,
        "run": cfg.run,
        "env": cfg.env.id,
        **summarize(results),
        "per_episode": [r.row() for r in results],
    }
    write_text(out / "episodes.csv", episodes_csv(results))
    write_json(out / "metrics.json", metrics)
    return metrics, out


def run_suite_evaluation(cfg: EvalConfig) -> tuple[list[dict[str, Any]], Path]:
    """Run ``cfg.suite`` and write ``scenarios.json`` and ``scenarios.csv``."""
    out = cfg.out_dir()
    check_writable(out)
    probe = make_env(cfg.env, cfg.reward)  # the policy is checked against the agent's own observations
    try:
        policy = make_policy(cfg, probe)
    finally:
        probe.close()
    rows = run_suite(str(cfg.suite), policy, cfg.env, cfg.reward, cfg.safety, cfg.faults, cfg.seed)
    flat = [{**{k: v for k, v in r.items() if k != "params"}, "params": json.dumps(r["params"])} for r in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(flat[0]))
    writer.writeheader()
    writer.writerows(flat)
    write_text(out / "scenarios.csv", buffer.getvalue())
    write_json(out / "scenarios.json", rows)
    return rows, out


def format_metrics(m: dict[str, Any]) -> str:
    """A short table of the headline metrics."""
    lo, hi = m["collision_rate_ci95"]
    rlo, rhi = m["mean_return_ci95"]
    rows = [
        ("episodes", f"{m['episodes']}"),
        ("return", f"{m['mean_return']:.2f}  (95% CI {rlo:.2f}..{rhi:.2f})"),
        ("crash rate", f"{m['collision_rate']:.1%}  (95% CI {lo:.1%}..{hi:.1%})"),
        ("mean speed", f"{m['mean_speed']:.2f} m/s"),
        ("distance", f"{m['mean_distance']:.0f} m"),
        ("lane changes", f"{m['lane_changes_per_episode']:.2f} / episode"),
        ("interventions", f"{m['intervention_rate']:.1%} of steps"),
    ]
    if m.get("veto_rate"):
        rows.append(("shield vetoes", f"{m['veto_rate']:.1%} of steps (the policy's own learned shield)"))
    reasons = m.get("interventions_by_reason") or {}
    if reasons:
        rows.append(("  by reason", ", ".join(f"{reason} {count}" for reason, count in reasons.items())))
    kinds = m.get("crashes_by_kind") or {}
    if kinds:
        rows.append(("  crash kinds", ", ".join(f"{kind} {count}" for kind, count in kinds.items())))
    if m.get("boxed_in_share") is not None:
        parts = (("speed_boxed_in", "there"), ("speed_free", "elsewhere"))
        split = ", ".join(f"{m[key]:.2f} m/s {label}" for key, label in parts if m[key] is not None)
        rows.append(("boxed in", f"{m['boxed_in_share']:.1%} of steps ({split})"))
    if m.get("hidden_crashes") is not None:
        share = f"{m['hidden_crash_episodes']:.0%} of episodes"
        rows.append(
            ("hidden crash", f"{m['hidden_crashes']} overrides whose proposal crashed without the monitor ({share})")
        )
    if m.get("flagged_lane_changes_per_episode"):
        crashed = m.get("flagged_lane_change_crashes", 0)
        rows.append(
            (
                "risky merges",
                f"{m['flagged_lane_changes_per_episode']:.2f} / episode refused by the monitor's check"
                f" (shadow: would have been), {crashed} ended in a crash",
            )
        )
    if m.get("floor_trap_share") is not None:
        trap = "held at the lowest target speed, closing in on a slower car"
        rows.append(("floor traps", f"{m['floor_trap_share']:.1%} of steps ({trap})"))
    if m.get("slow_leader_share") is not None:
        slow = "behind a car slower than the speed floor, close ahead"
        rows.append(("slow leader", f"{m['slow_leader_share']:.1%} of steps ({slow})"))
    return "\n".join(f"{k:<14}{v}" for k, v in rows)
