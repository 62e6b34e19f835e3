"""Build or load the SB3 PPO agent from the ``agent`` config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from agents.config import AgentConfig
from perception import FramesExtractor, extractor_kwargs
from perception.config import PerceptionConfig


def policy_kwargs(cfg: AgentConfig, perception: PerceptionConfig) -> dict[str, Any]:
    """Network settings; the CNN extractor normalizes pixels itself (no SB3 /255)."""
    kwargs: dict[str, Any] = {"net_arch": dict(pi=list(cfg.net_arch), vf=list(cfg.net_arch))}
    if cfg.policy == "cnn":
        kwargs.update(
            features_extractor_class=FramesExtractor,
            features_extractor_kwargs=extractor_kwargs(perception.checkpoint, perception.freeze, cfg.features_dim),
            normalize_images=False,
        )
    return kwargs


def learning_rate(cfg: AgentConfig) -> float | Schedule:
    """PPO's step size: constant, or linear from ``learning_rate`` to ``learning_rate_final`` over the run.

    SB3 evaluates a schedule on the share of ``total_timesteps`` still to go, counted from the saved step
    count on resume: the same total continues the same line, a larger one redraws it from there.
    """
    if cfg.learning_rate_final is None:
        return cfg.learning_rate
    return LinearSchedule(cfg.learning_rate, cfg.learning_rate_final, end_fraction=1.0)


def build_ppo(
    cfg: AgentConfig,
    perception: PerceptionConfig,
    env: VecEnv,
    seed: int,
    tensorboard_dir: str | Path | None,
) -> PPO:
    """A fresh PPO agent, its CNN backbone loaded from the perception checkpoint if one is given.

    :param cfg: hyperparameters
    :param perception: pretrained backbone and whether to freeze it
    :param env: training envs
    :param seed: seeds torch and the action sampling
    :param tensorboard_dir: TensorBoard log folder, or None
    :raises CheckpointError: the checkpoint is missing or does not fit the env's frames
    """
    model = PPO(
        "CnnPolicy" if cfg.policy == "cnn" else "MlpPolicy",
        env,
        learning_rate=learning_rate(cfg),
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip_range,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        policy_kwargs=policy_kwargs(cfg, perception),
        tensorboard_log=str(tensorboard_dir) if tensorboard_dir else None,
        seed=seed,
        device=cfg.device,
        verbose=0,
    )
    if perception.checkpoint is not None:
        model.policy.features_extractor.load_backbone(perception.checkpoint)
    return model


def load_ppo(
    path: str | Path,
    env: VecEnv | None,
    cfg: AgentConfig,
    tensorboard_dir: str | Path | None = None,
) -> PPO:
    """Load a saved PPO zip onto ``env`` (its spaces must match)."""
    return PPO.load(
        str(path),
        env=env,
        device=cfg.device,
        tensorboard_log=str(tensorboard_dir) if tensorboard_dir else None,
    )
