"""The training flow, top to bottom: config -> run dir -> envs -> PPO -> learn -> save + snapshots -> shield -> eval."""

from __future__ import annotations

import dataclasses
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList

from agents.auxiliary import FactRegression, FactsHead
from agents.callbacks import (
    Checkpointer,
    DrivingStats,
    ProgressBar,
    StopOnSignal,
    latest_checkpoint,
)
from agents.config import TrainConfig
from agents.corrections import CorrectionLearning
from agents.distillation import TeacherDistillation
from agents.eval_job import PERCEPTION_COPY, load_classifier, play
from agents.evaluation import eval_seeds, summarize
from agents.imitation import warm_start
from agents.plots import plot_learning_curves
from agents.policies import AgentPolicy
from agents.ppo import build_ppo, load_ppo
from agents.schema import ConfigError
from agents.shield import Shield
from agents.shield_fit import learn_shield
from agents.snapshots import save_snapshots
from agents.vec_env import make_vec_env
from envs import make_env
from envs.io import copy_file, save_model, write_json, write_yaml
from perception.model import CheckpointError, check_input_shape, read_checkpoint


@dataclass
class TrainResult:
    """What a call to :func:`train` produced."""

    run_dir: Path
    timesteps: int
    interrupted_by: int | None
    """The signal number that stopped training early, or None if it completed."""
    summary: dict[str, Any] | None
    """Contents of summary.json (None when interrupted)."""


def with_run_name(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with ``run.name`` set (a timestamp when null)."""
    if cfg.run.name is not None:
        return cfg
    name = datetime.now().strftime("%Y%m%d-%H%M%S")
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, name=name))


def _check_run_dir(cfg: TrainConfig, run_dir: Path) -> Path | None:
    """Refuse to overwrite a run; on resume, return the checkpoint to continue from."""
    if not cfg.resume:
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(
                f"run.name: {run_dir} already exists; continue it with resume=true or choose another run.name"
            )
        return None
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        raise ConfigError(f"resume: no checkpoint in {run_dir / 'checkpoints'}")
    return checkpoint


def check_perception(cfg: TrainConfig) -> None:
    """A pretrained backbone must exist and fit the env's frames, before any env is built."""
    if cfg.perception.checkpoint is None:
        return
    frames = cfg.env.frames_shape
    try:
        meta = read_checkpoint(cfg.perception.checkpoint)["meta"]
        check_input_shape(meta, frames, cfg.perception.checkpoint, cfg.env.intra_frames)
    except CheckpointError as err:
        missing = "not found" in str(err)
        hint = " (make it with scripts/train_perception.py, or use perception=scratch)" if missing else ""
        raise ConfigError(f"perception.checkpoint: {err}{hint}") from None


def _load_checkpoint(cfg: TrainConfig, checkpoint: Path, venv: Any, tb_dir: Path) -> Any:
    try:
        return load_ppo(checkpoint, venv, cfg.agent, tb_dir)
    except ValueError as err:  # SB3 raises ValueError when spaces differ
        raise ConfigError(f"{checkpoint}: does not fit this env ({err})") from None


def final_evaluation(
    model: Any, cfg: TrainConfig, run_dir: Path, shield: Shield | None = None, snapshots: list[Any] | None = None
) -> tuple[dict[str, Any], list[dict]]:
    """Deterministic episodes on held-out seeds, in one local env; the first ``eval.video`` recorded."""
    render_mode = "rgb_array" if cfg.eval.video else None
    env = make_env(cfg.env, cfg.reward, render_mode=render_mode, safety=cfg.safety, faults=cfg.faults, bare_replay=True)
    try:
        seeds = eval_seeds(cfg.eval.episodes)
        policy = AgentPolicy(model, load_classifier(run_dir), shield, snapshots)
        results = play(env, policy, seeds, cfg.eval.video, run_dir / "eval" / "videos")
    finally:
        env.close()
    return summarize(results), [r.row() for r in results]


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) a PPO driver; writes everything under ``<run.dir>/<run.name>/``.

    :raises ConfigError: an existing run without ``resume``, a missing or mismatched checkpoint
    """
    cfg = with_run_name(cfg)
    run_dir = Path(cfg.run.dir) / str(cfg.run.name)
    checkpoint = _check_run_dir(cfg, run_dir)
    if checkpoint is None:
        check_perception(cfg)
    tb_dir, ckpt_dir = run_dir / "tb", run_dir / "checkpoints"

    imitate = checkpoint is None and cfg.imitation.enabled
    distill = cfg.agent.distill_coef > 0
    aux = FactsHead(cfg.agent.features_dim) if cfg.agent.aux_coef > 0 else None
    venv = make_vec_env(
        cfg.env,
        cfg.reward,
        cfg.agent.resolved_n_envs(),
        cfg.run.seed,
        safety=cfg.safety,
        faults=cfg.faults,
        expert=cfg.driver if imitate or distill else None,
        unmonitored=cfg.agent.unmonitored_envs,
        shadow=cfg.agent.resolved_shadow_envs(monitor=cfg.safety.enabled),
        planner=cfg.imitation.planner(),
        facts=aux is not None,
        densities=cfg.agent.train_densities,
    )
    start = time.monotonic()
    try:
        if checkpoint is None:
            model = build_ppo(cfg.agent, cfg.perception, venv, cfg.run.seed, tb_dir)
            if cfg.perception.checkpoint is not None:
                copy_file(cfg.perception.checkpoint, run_dir / PERCEPTION_COPY)
        else:
            model = _load_checkpoint(cfg, checkpoint, venv, tb_dir)
        write_yaml(run_dir / "config.yaml", cfg.saved())
        if imitate:
            aux_weight = None if aux is None else (aux, cfg.agent.aux_coef)
            imitation = warm_start(model, venv, cfg.imitation, cfg.agent.gamma, cfg.run.seed, aux=aux_weight)
            write_json(run_dir / "imitation.json", imitation)
        if distill:  # the teacher keeps labelling during PPO, on a share of the steps
            venv.env_method("teach_with", cfg.imitation.planner(cfg.agent.distill_expert))
            venv.set_attr("advising", True)
            venv.set_attr("advice_rate", cfg.agent.distill_rate)

        stats, stopper = DrivingStats(), StopOnSignal()
        checkpointer = Checkpointer(ckpt_dir, cfg.run.checkpoint_every, keep=max(3, cfg.agent.ensemble + 1))
        callbacks = [stats, checkpointer, stopper]
        if cfg.agent.correction_coef > 0:
            callbacks.append(
                CorrectionLearning(
                    cfg.agent.correction_coef,
                    cfg.agent.correction_memory,
                    cfg.agent.batch_size,
                    cfg.run.seed,
                    two_sided=cfg.agent.correction_two_sided,
                )
            )
        if distill:
            callbacks.append(
                TeacherDistillation(
                    cfg.agent.distill_coef,
                    cfg.agent.distill_memory,
                    cfg.agent.batch_size,
                    cfg.run.seed,
                    anneal_until=cfg.agent.total_timesteps if cfg.agent.distill_anneal else None,
                )
            )
        if aux is not None:  # a fresh head on resume: it is a training aid, not saved with the policy
            callbacks.append(
                FactRegression(
                    aux,
                    cfg.agent.aux_coef,
                    cfg.agent.aux_memory,
                    cfg.agent.batch_size,
                    cfg.run.seed,
                    learning_rate=cfg.agent.learning_rate,
                )
            )
        if cfg.run.progress_bar:
            callbacks.append(ProgressBar(cfg.agent.total_timesteps, stats))
        remaining = max(cfg.agent.total_timesteps - model.num_timesteps, 0)
        ppo_start, start_steps = time.monotonic(), model.num_timesteps
        with stopper:
            if remaining > 0:
                model.learn(
                    remaining,
                    callback=CallbackList(callbacks),
                    tb_log_name="PPO",
                    reset_num_timesteps=checkpoint is None,
                )
        wall, ppo_wall = time.monotonic() - start, time.monotonic() - ppo_start
        checkpointer.save()
    finally:
        venv.close()

    if stopper.received is not None:
        return TrainResult(run_dir, model.num_timesteps, stopper.received, None)

    save_model(model, run_dir / "model.zip")
    snapshots = save_snapshots(ckpt_dir, run_dir, model.num_timesteps, cfg.run.checkpoint_every, cfg.agent.ensemble)
    shield_start = time.monotonic()
    shield = learn_shield(model, cfg, run_dir) if cfg.shield.enabled else None
    shield_wall = time.monotonic() - shield_start
    members = [PPO.load(str(p), device=model.device) for p in snapshots]
    metrics, per_episode = final_evaluation(model, cfg, run_dir, shield, members)
    plot_learning_curves({run_dir.name: run_dir}, run_dir / "learning_curves.png")
    summary = {
        "run": str(run_dir),
        "timesteps": int(model.num_timesteps),
        "wall_time_s": round(wall + shield_wall, 1),
        "shield_s": round(shield_wall, 1) if shield is not None else None,
        "steps_per_s": round((model.num_timesteps - start_steps) / ppo_wall, 1) if ppo_wall > 0 else None,
        "imitation_env_steps": cfg.imitation.steps + cfg.imitation.dagger_steps if imitate else 0,
        "resumed": checkpoint is not None,
        "snapshots": [p.name for p in snapshots],
        "eval": metrics,
        "per_episode": per_episode,
    }
    write_json(run_dir / "summary.json", summary)
    return TrainResult(run_dir, model.num_timesteps, None, summary)


def format_summary(summary: dict[str, Any]) -> str:
    """One screen of text for the end of training."""
    ev = summary["eval"]
    lines = [
        f"run          {summary['run']}",
        f"steps        {summary['timesteps']}  ({summary['wall_time_s']:.0f} s this session, "
        f"{summary['steps_per_s'] or 0:.0f} steps/s)",
    ]
    if ev.get("episodes"):
        seeds = ev["seeds"]
        lines += [
            f"evaluation   {ev['episodes']} deterministic episodes, held-out seeds {seeds[0]}..{seeds[-1]}",
            f"return       {ev['mean_return']:.2f} +- {ev['std_return']:.2f}",
            f"crash rate   {ev['collision_rate']:.0%}",
            f"mean speed   {ev['mean_speed']:.1f} m/s",
        ]
    return "\n".join(lines)


SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
