"""Fitting the learned shield after PPO: label the states the trained policy reaches, fit the head.

The states come from the trained policy itself, driving with the training envs' monitor (so from the
states it meets when deployed), on seeds of its own after the training envs'. Each is labelled by
:class:`envs.action_risks.ActionRisks` and the head (:class:`agents.shield.ShieldHead`) learns the labels
from the policy's frozen features; a held-out share of the states measures it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from agents.config import ShieldConfig, TrainConfig, compose
from agents.schema import ConfigError, from_dict
from agents.shield import SHIELD_FILE, Shield, ShieldHead, policy_features, save_shield
from agents.vec_env import make_vec_env
from envs.action_risks import N_ACTIONS, RiskSpec
from envs.io import write_json


def collect_labelled(model: Any, venv: VecEnv, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(observations, risk labels) of ``steps`` states the deterministic policy reaches in ``venv``.

    ``venv`` must add ``info["action_risks"]``. The first state of each episode goes unlabelled: a vec
    env returns it in place of the last one, whose info the label belongs to.
    """
    observations, labels = [], []
    obs = venv.reset()
    while len(labels) < steps:
        actions, _ = model.predict(obs, deterministic=True)
        next_obs, _, dones, infos = venv.step(actions)
        for i, info in enumerate(infos):
            if not dones[i] and len(labels) < steps:
                observations.append(next_obs[i])
                labels.append(np.asarray(info["action_risks"], dtype=np.float32))
        obs = next_obs
    return np.stack(observations), np.stack(labels)


def _scores(head: ShieldHead, features: torch.Tensor, labels: torch.Tensor, threshold: float) -> dict[str, Any]:
    """Per action: share of states labelled unsafe, and the head's precision and recall at ``threshold``."""
    from agents.policies import ACTION_NAMES

    with torch.no_grad():
        vetoed = torch.sigmoid(head(features)) > threshold
    unsafe = labels > 0.5
    out: dict[str, Any] = {}
    for a in range(N_ACTIONS):
        hits = int((vetoed[:, a] & unsafe[:, a]).sum())
        out[ACTION_NAMES[a]] = {
            "unsafe_share": round(float(unsafe[:, a].float().mean()), 4) if len(labels) else None,
            "precision": round(hits / int(vetoed[:, a].sum()), 3) if vetoed[:, a].any() else None,
            "recall": round(hits / int(unsafe[:, a].sum()), 3) if unsafe[:, a].any() else None,
        }
    return out


def fit_head(features: torch.Tensor, labels: torch.Tensor, cfg: ShieldConfig, seed: int) -> tuple[Shield, dict]:
    """Fit a :class:`ShieldHead` to ``labels`` from ``features``; report its scores on the held-out share."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(features)
    order = torch.randperm(n, generator=generator)
    n_held = int(round(cfg.holdout * n))
    held, train = order[:n_held], order[n_held:]
    head = ShieldHead(features.shape[1], cfg.hidden)
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    for _ in range(cfg.epochs):
        shuffled = train[torch.randperm(len(train), generator=generator)]
        for i in range(0, len(shuffled), cfg.batch_size):
            batch = shuffled[i : i + cfg.batch_size]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(features[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.eval()
    report = {
        "states": n,
        "held_out": n_held,
        "held_out_scores": _scores(head, features[held], labels[held], cfg.threshold) if n_held else None,
    }
    return Shield(head, cfg.threshold), report


def fit_shield(model: Any, venv: VecEnv, cfg: ShieldConfig, seed: int) -> tuple[Shield, dict]:
    """Collect ``cfg.steps`` labelled states with ``model`` in ``venv``, then fit the shield on its features."""
    start = time.monotonic()
    observations, labels = collect_labelled(model, venv, cfg.steps)
    collected = time.monotonic() - start
    features = policy_features(model.policy, observations)
    shield, report = fit_head(features, torch.as_tensor(labels), cfg, seed)
    report.update(
        {
            "source": cfg.source,
            "horizon": cfg.horizon,
            "continuation": cfg.continuation,
            "threshold": cfg.threshold,
            "collect_s": round(collected, 1),
            "fit_s": round(time.monotonic() - start - collected, 1),
        }
    )
    return shield, report


def learn_shield(model: Any, cfg: TrainConfig, run_dir: Path) -> Shield:
    """Fit the learned shield on states the trained policy reaches (seeds after the training envs'); save it."""
    n_envs = cfg.agent.resolved_n_envs()
    venv = make_vec_env(
        cfg.env,
        cfg.reward,
        n_envs,
        cfg.run.seed + n_envs,
        safety=cfg.safety,
        faults=cfg.faults,
        risks=RiskSpec(cfg.shield.source, cfg.shield.horizon, cfg.shield.continuation, cfg.driver),
    )
    try:
        shield, report = fit_shield(model, venv, cfg.shield, cfg.run.seed)
    finally:
        venv.close()
    save_shield(run_dir / SHIELD_FILE, shield, report)
    write_json(run_dir / "shield.json", report)
    return shield


def load_shield_job(config_dir: str | Path, argv: list[str]) -> tuple[Path, TrainConfig]:
    """(run dir, its saved config with the ``shield`` group from ``argv``) for fitting a shield to a trained run.

    :param argv: ``run=DIR`` and ``shield=OPTION`` / ``shield.KEY=VALUE`` overrides
    :raises ConfigError: naming the key or path at fault
    """
    import yaml

    runs = [a.partition("=")[2] for a in argv if a.startswith("run=")]
    if not runs or not runs[-1]:
        raise ConfigError("run: name the trained run, run=<run dir>")
    run_dir = Path(runs[-1]).expanduser()
    for name in ("model.zip", "config.yaml"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"run: no {name} in {run_dir}")
    overrides = [a for a in argv if not a.startswith("run=")]
    for item in overrides:
        key = item.partition("=")[0].lstrip("+~")
        if key != "shield" and not key.startswith("shield."):
            raise ConfigError(f"{key}: only shield=OPTION and shield.KEY=VALUE can be set (the run fixes the rest)")
    data = compose(config_dir, "train", overrides)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    cfg = from_dict(TrainConfig, {**saved, "shield": data["shield"]})
    if not cfg.shield.enabled:
        raise ConfigError("shield.steps: must be > 0 to fit a shield (or choose shield=learned)")
    return run_dir, cfg


def fit_run_shield(run_dir: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Fit and save the shield of the trained run in ``run_dir``; return its report."""
    from stable_baselines3 import PPO

    model = PPO.load(str(run_dir / "model.zip"), device="cpu")
    learn_shield(model, cfg, run_dir)
    return json.loads((run_dir / "shield.json").read_text())
