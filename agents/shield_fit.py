"""Fitting the learned shield after PPO: label the states the trained policy reaches, fit the head.

The states come from the trained policy itself, driving with the training envs' monitor stepping in or in
shadow mode (``shield.collect``), on seeds of its own after the training envs'. Each is labelled by
:class:`envs.action_risks.ActionRisks`, and the head learns the labels from the policy's frozen features
(:class:`agents.shield.ShieldHead`) or from the frames (:class:`agents.shield.ShieldNet`, ``shield.reads``);
a held-out share of the states measures it.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from agents.config import ShieldConfig, TrainConfig, compose
from agents.schema import ConfigError, from_dict
from agents.shield import SHIELD_FILE, Shield, ShieldHead, ShieldNet, policy_features, save_shield
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


def _logits(head: ShieldHead | ShieldNet, inputs: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The head's logits over ``inputs`` in batches (a CNN over thousands of frames at once would not fit)."""
    with torch.no_grad():
        return torch.cat([head(inputs[i : i + batch]) for i in range(0, len(inputs), batch)])


def _scores(
    head: ShieldHead | ShieldNet, inputs: torch.Tensor, labels: torch.Tensor, threshold: float
) -> dict[str, Any]:
    """Per action: share of states labelled unsafe, and the head's precision and recall at ``threshold``."""
    from agents.policies import ACTION_NAMES

    vetoed = torch.sigmoid(_logits(head, inputs)) > threshold
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


def fit_head(
    inputs: torch.Tensor, labels: torch.Tensor, cfg: ShieldConfig, seed: int, head: ShieldHead | ShieldNet | None = None
) -> tuple[Shield, dict]:
    """Fit ``head`` to ``labels`` from ``inputs``; report its scores on the held-out share.

    :param inputs: the policy's features for a :class:`ShieldHead`, the observations for a :class:`ShieldNet`
    :param head: the untrained head; None: a :class:`ShieldHead` as wide as ``inputs`` (features)
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(inputs)
    order = torch.randperm(n, generator=generator)
    n_held = int(round(cfg.holdout * n))
    held, train = order[:n_held], order[n_held:]
    head = head if head is not None else ShieldHead(inputs.shape[1], cfg.hidden)
    head.train()
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    for _ in range(cfg.epochs):
        shuffled = train[torch.randperm(len(train), generator=generator)]
        for i in range(0, len(shuffled), cfg.batch_size):
            batch = shuffled[i : i + cfg.batch_size]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(inputs[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.eval()
    report = {
        "states": n,
        "held_out": n_held,
        "held_out_scores": _scores(head, inputs[held], labels[held], cfg.threshold) if n_held else None,
    }
    return Shield(head, cfg.threshold), report


def fit_shield(model: Any, venv: VecEnv, cfg: ShieldConfig, seed: int) -> tuple[Shield, dict]:
    """Collect ``cfg.steps`` labelled states with ``model`` in ``venv``, then fit the shield on what it reads
    (``cfg.reads``): the policy's features, or the frames with a copy of the policy's backbone."""
    start = time.monotonic()
    observations, labels = collect_labelled(model, venv, cfg.steps)
    collected = time.monotonic() - start
    targets = torch.as_tensor(labels)
    if cfg.reads == "frames":
        backbone = copy.deepcopy(model.policy.features_extractor.backbone).cpu()
        head = ShieldNet(backbone, tuple(observations.shape[1:]), cfg.hidden)
        shield, report = fit_head(torch.as_tensor(observations), targets, cfg, seed, head)
    else:
        shield, report = fit_head(policy_features(model.policy, observations), targets, cfg, seed)
    report.update(
        {
            "source": cfg.source,
            "horizon": cfg.horizon,
            "continuation": cfg.continuation,
            "collect": cfg.collect,
            "reads": cfg.reads,
            "threshold": cfg.threshold,
            "collect_s": round(collected, 1),
            "fit_s": round(time.monotonic() - start - collected, 1),
        }
    )
    return shield, report


def collection_env(cfg: TrainConfig) -> VecEnv:
    """The envs the trained policy drives in while the shield's states are collected: the training envs' scenes
    (their traffic densities included), reward and monitor (in shadow mode with ``shield.collect=bare``), on seeds
    after theirs, labelling each state."""
    n_envs = cfg.agent.resolved_n_envs()
    # A run without a monitor collects bare already; a shadow monitor needs one to watch.
    shadow = n_envs if cfg.shield.collect == "bare" and cfg.safety.enabled else 0
    return make_vec_env(
        cfg.env,
        cfg.reward,
        n_envs,
        cfg.run.seed + n_envs,
        safety=cfg.safety,
        faults=cfg.faults,
        risks=RiskSpec(cfg.shield.source, cfg.shield.horizon, cfg.shield.continuation, cfg.driver),
        shadow=shadow,
        densities=cfg.agent.train_densities,
    )


def learn_shield(model: Any, cfg: TrainConfig, run_dir: Path) -> Shield:
    """Fit the learned shield on states the trained policy reaches (:func:`collection_env`); save it."""
    venv = collection_env(cfg)
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
