"""What limits the camera clone? Refit its head with and without the ego's speed.

The clone agrees with the teacher on ~80 % of held-out steps. Either the policy head is too
small for what the frozen backbone shows, or the frames lack something the teacher reads.
The ego's own speed is a candidate: the camera is centred on the ego, and with frames 1 s
apart the lane stripes' motion aliases, so the speed shows only through the other cars'
(unknown) speeds. This probe fits the same head twice on the same expert demonstrations and
the same frozen features, once with the ego's speed appended (ground truth from ``info``),
and compares held-out agreement and the confusion between the teacher's actions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from agents.config import ImitationConfig
from agents.imitation import Demonstrations, split

ACTION_NAMES = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")
SPEED_CENTRE, SPEED_SCALE = 25.0, 5.0  # m/s: highway-env's target speeds span 20..30


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


def fit_head(
    inputs: torch.Tensor,
    actions: torch.Tensor,
    cfg: ImitationConfig,
    hidden: list[int],
    seed: int = 0,
) -> dict[str, Any]:
    """Fit an MLP ``inputs -> action`` like the policy's head; held-out agreement and confusion.

    :param inputs: (N, D) features
    :param actions: (N,) the teacher's actions in 0..4
    :param cfg: epochs, batch size, learning rate and held-out share (as for cloning)
    :param hidden: hidden layer widths: the features layer, then the policy's ``net_arch``
    :return: ``train_accuracy``, ``holdout_accuracy`` and ``confusion`` (rows: the teacher's action,
        columns: the head's, on held-out steps)
    """
    if len(inputs) != len(actions):
        raise ValueError(f"inputs and actions differ in length: {len(inputs)} != {len(actions)}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = inputs.shape[1]
    for i, out in enumerate(hidden):
        layers += [nn.Linear(width, out), nn.ReLU() if i == 0 else nn.Tanh()]
        width = out
    head = nn.Sequential(*layers, nn.Linear(width, len(ACTION_NAMES)))
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
    confusion = np.zeros((len(ACTION_NAMES), len(ACTION_NAMES)), dtype=int)
    np.add.at(confusion, (actions[hold].numpy(), predicted[hold].numpy()), 1)
    return {
        "train_accuracy": float(hits[train].mean()),
        "holdout_accuracy": float(hits[hold].mean()) if len(hold) else None,
        "confusion": confusion.tolist(),
    }


def probe(extractor: Any, demos: Demonstrations, cfg: ImitationConfig, hidden: list[int], seed: int = 0) -> dict:
    """Held-out agreement of heads on the frames' features alone and with the ego's speed."""
    features = backbone_features(extractor, np.stack(demos.obs))
    actions = torch.as_tensor(np.asarray(demos.actions), dtype=torch.long)
    with_speed = torch.cat([features, speed_column(demos.ego_speeds)], dim=1)
    return {
        "samples": len(demos),
        "frames": fit_head(features, actions, cfg, hidden, seed),
        "frames+speed": fit_head(with_speed, actions, cfg, hidden, seed),
    }
