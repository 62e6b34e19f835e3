"""What limits the camera clone? Refit its head with and without the ego's speed.

The clone agrees with the teacher on ~80 % of held-out steps. Either the policy head is too
small for what the frozen backbone shows, or the frames lack something the teacher reads.
Two candidates: the ego's own speed (the camera is centred on the ego, and with frames 1 s
apart the lane stripes' motion aliases, so the speed shows only through the other cars'
unknown speeds) and its target-speed index (what FASTER and SLOWER move; nothing in a frame
shows it). This probe fits the same head on the same expert demonstrations and frozen
features three times: on the frames alone, with the speed, and with the speed and the index.

Some disagreements are not mistakes: at the top target speed FASTER does what IDLE does, at
the lowest SLOWER does. Agreement is therefore also scored by effect (same lane command,
same resulting target speed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from agents.config import ImitationConfig
from agents.imitation import Demonstrations, split
from agents.policies import ACTION_NAMES
from envs.safety_monitor import FASTER, LANE_LEFT, LANE_RIGHT, SLOWER

SPEED_CENTRE, SPEED_SCALE = 25.0, 5.0  # m/s: highway-env's target speeds span 20..30
N_TARGET_SPEEDS = 3  # DiscreteMetaAction's default target speeds: 20, 25, 30 m/s


@torch.no_grad()
def backbone_features(extractor: Any, obs: np.ndarray, chunk: int = 512) -> torch.Tensor:
    """The (frozen) conv backbone's features of raw uint8 frames, (N, flat)."""
    device = next(extractor.parameters()).device
    parts = [extractor.backbone(torch.as_tensor(obs[s : s + chunk], device=device)) for s in range(0, len(obs), chunk)]
    return torch.cat(parts).cpu()


def speed_column(ego_speeds: list[float]) -> torch.Tensor:
    """The ego's speed as one standardized input column, (N, 1).

    :raises ValueError: a sample without a speed (the env did not report it)
    """
    speeds = torch.as_tensor(np.asarray(ego_speeds, dtype=np.float32))
    if speeds.numel() == 0 or torch.isnan(speeds).any():
        raise ValueError("ego_speeds: every sample needs the ego's speed (info['speed'])")
    return ((speeds - SPEED_CENTRE) / SPEED_SCALE).unsqueeze(1)


def target_index_columns(speed_indices: list[int]) -> torch.Tensor:
    """The ego's target-speed index, one-hot, (N, N_TARGET_SPEEDS).

    :raises ValueError: a sample without an index (recorded without ``ExpertAdvice``)
    """
    index = torch.as_tensor(np.asarray(speed_indices, dtype=np.int64))
    if index.numel() == 0 or (index < 0).any() or (index >= N_TARGET_SPEEDS).any():
        raise ValueError(f"speed_indices: every sample needs a target-speed index in 0..{N_TARGET_SPEEDS - 1}")
    return nn.functional.one_hot(index, N_TARGET_SPEEDS).float()


def same_effect(a: np.ndarray, b: np.ndarray, speed_indices: np.ndarray) -> np.ndarray:
    """Whether meta-actions ``a`` and ``b`` command the same lane change and the same target speed."""

    def effect(action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = np.where(action == FASTER, 1, np.where(action == SLOWER, -1, 0))
        target = np.clip(speed_indices + step, 0, N_TARGET_SPEEDS - 1)
        lane = np.where(action == LANE_LEFT, -1, np.where(action == LANE_RIGHT, 1, 0))
        return lane, target

    (lane_a, target_a), (lane_b, target_b) = effect(np.asarray(a)), effect(np.asarray(b))
    return (lane_a == lane_b) & (target_a == target_b)


def fit_head(
    inputs: torch.Tensor,
    actions: torch.Tensor,
    cfg: ImitationConfig,
    hidden: list[int],
    seed: int = 0,
    speed_indices: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit an MLP ``inputs -> action`` like the policy's head; held-out agreement and confusion.

    :param inputs: (N, D) features
    :param actions: (N,) the teacher's actions in 0..4
    :param cfg: epochs, batch size, learning rate and held-out share (as for cloning)
    :param hidden: hidden layer widths: the features layer, then the policy's ``net_arch``
    :param speed_indices: (N,) the ego's target-speed index, to also score agreement by effect
    :return: ``train_accuracy``, ``holdout_accuracy``, ``holdout_same_effect`` (with
        ``speed_indices``) and ``confusion`` (rows: the teacher's action, columns: the head's,
        on held-out steps)
    """
    if len(inputs) != len(actions):
        raise ValueError(f"inputs and actions differ in length: {len(inputs)} != {len(actions)}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = inputs.shape[1]
    for i, out in enumerate(hidden):
        layers += [nn.Linear(width, out), nn.ReLU() if i == 0 else nn.Tanh()]
        width = out
    n_actions = len(ACTION_NAMES)
    head = nn.Sequential(*layers, nn.Linear(width, n_actions))
    hold, train = split(len(actions), cfg.holdout, seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate)
    rng = np.random.default_rng(seed)
    for _ in range(cfg.epochs):
        rng.shuffle(train)
        for start in range(0, len(train), cfg.batch_size):
            batch = torch.as_tensor(train[start : start + cfg.batch_size])
            loss = nn.functional.cross_entropy(head(inputs[batch]), actions[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = head(inputs).argmax(1)
    hits = (predicted == actions).numpy()
    confusion = np.zeros((n_actions, n_actions), dtype=int)
    np.add.at(confusion, (actions[hold].numpy(), predicted[hold].numpy()), 1)
    report: dict[str, Any] = {
        "train_accuracy": float(hits[train].mean()),
        "holdout_accuracy": float(hits[hold].mean()) if len(hold) else None,
        "confusion": confusion.tolist(),
    }
    if speed_indices is not None and len(hold):
        alike = same_effect(predicted[hold].numpy(), actions[hold].numpy(), np.asarray(speed_indices)[hold])
        report["holdout_same_effect"] = float(alike.mean())
    return report


VARIANTS = ("frames", "frames+speed", "frames+speed+target")


def probe(extractor: Any, demos: Demonstrations, cfg: ImitationConfig, hidden: list[int], seed: int = 0) -> dict:
    """Held-out agreement of heads on the frames' features alone, with the ego's speed, and with its target speed."""
    features = backbone_features(extractor, np.stack(demos.obs))
    actions = torch.as_tensor(np.asarray(demos.actions), dtype=torch.long)
    speed = speed_column(demos.ego_speeds)
    target = target_index_columns(demos.speed_indices)
    indices = np.asarray(demos.speed_indices)
    inputs = {
        "frames": features,
        "frames+speed": torch.cat([features, speed], dim=1),
        "frames+speed+target": torch.cat([features, speed, target], dim=1),
    }
    report: dict[str, Any] = {"samples": len(demos)}
    for name in VARIANTS:
        report[name] = fit_head(inputs[name], actions, cfg, hidden, seed, speed_indices=indices)
    return report
