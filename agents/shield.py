"""A learned shield: the camera policy refuses, by itself, the meta-actions its frames say are unsafe.

PPO learns from the override price to avoid what the monitor refuses, but only as far as a return
signal teaches it: without the monitor the default policy still changes lanes into cars and closes on
the car ahead (README, Results). The monitor's answer exists for every action on every step, though,
on ground truth (:mod:`envs.action_risks`). After PPO, the trained policy drives with the monitor and
each state it reaches is labelled with the actions that would have been unsafe there; a small head on
the policy's frozen features (:class:`ShieldHead`), or a CNN of its own on the frames (:class:`ShieldNet`),
learns those labels (binary cross-entropy per action).
At run time the policy takes its own best action unless the head rates it unsafe, and then its best
action among those the head rates safe (the least unsafe one if none is): the same policy, with and
without the monitor, reading only its camera. The monitor stays the independent, ground-truth layer.

The shield is saved beside the model (``shield.pt``); the policy's own weights are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from envs.action_risks import N_ACTIONS
from envs.io import atomic_write
from perception.backbone import ConvBackbone

SHIELD_FILE = "shield.pt"
"""The shield's file in a run dir."""


class ShieldHead(nn.Module):
    """Per meta-action logits of "unsafe", from the policy's features.

    :param features_dim: width of the features extractor's output
    :param hidden: width of the hidden layer
    """

    def __init__(self, features_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.features_dim, self.hidden = features_dim, hidden
        self.net = nn.Sequential(nn.Linear(features_dim, hidden), nn.ReLU(), nn.Linear(hidden, N_ACTIONS))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class ShieldNet(nn.Module):
    """Per meta-action logits of "unsafe", read from the camera frames by a CNN of its own.

    :class:`ShieldHead` reads the policy's features, which carry what the policy learned to see: where the policy
    is sure of a lane change, they say so, and the head rated lane changes into the slot close behind a slower car
    as safe (docs/experiments.md, session 34). This one starts from a copy of the policy's backbone and trains all
    of it on the labels alone, so the veto no longer shares the policy's blind spots; it costs one more CNN pass
    per decision.

    :param backbone: the convolutional backbone (a copy: its weights are trained here)
    :param input_shape: (C, H, W) of an observation, for the flatten size
    :param hidden: width of the hidden layer
    """

    def __init__(self, backbone: ConvBackbone, input_shape: tuple[int, int, int], hidden: int = 128) -> None:
        super().__init__()
        self.backbone, self.input_shape, self.hidden = backbone, tuple(int(d) for d in input_shape), hidden
        flat = backbone.output_size(self.input_shape)
        self.net = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, N_ACTIONS))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(self.backbone(pixels))


def shielded_choice(action_logits: np.ndarray, risks: np.ndarray, threshold: float) -> tuple[int, bool]:
    """(action, vetoed): the policy's best action unless its risk exceeds ``threshold``; then its best one
    among those at or below it, or the least risky of all when none is.

    :param action_logits: the policy's preference per meta-action
    :param risks: the shield's probability that each meta-action is unsafe
    :param threshold: a risk above this vetoes an action
    """
    best = int(np.argmax(action_logits))
    if risks[best] <= threshold:
        return best, False
    safe = risks <= threshold
    if not safe.any():
        return int(np.argmin(risks)), True
    return int(np.argmax(np.where(safe, action_logits, -np.inf))), True


@dataclass
class Shield:
    """A fitted :class:`ShieldHead` or :class:`ShieldNet` and its veto threshold, applied to an SB3 actor-critic
    policy."""

    head: ShieldHead | ShieldNet
    threshold: float

    def risks(self, policy: Any, obs: np.ndarray) -> np.ndarray:
        """The predicted probability that each meta-action is unsafe, for one observation of ``policy``."""
        with torch.no_grad():
            tensor, _ = policy.obs_to_tensor(np.asarray(obs))
            if isinstance(self.head, ShieldNet):
                inputs = tensor
            else:
                inputs = policy.extract_features(tensor, policy.pi_features_extractor)
            return torch.sigmoid(self.head.to(inputs.device)(inputs))[0].cpu().numpy()


def policy_features(policy: Any, observations: np.ndarray, batch: int = 256) -> torch.Tensor:
    """The actor's features of a batch of observations (no gradient)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(observations), batch):
            tensor, _ = policy.obs_to_tensor(observations[i : i + batch])
            out.append(policy.extract_features(tensor, policy.pi_features_extractor).cpu())
    return torch.cat(out) if out else torch.zeros(0, policy.features_dim)


def save_shield(path: str | Path, shield: Shield, report: dict[str, Any]) -> Path:
    """Write ``shield`` (weights, what it reads and its sizes, threshold, fit report) atomically."""
    head = shield.head
    payload = {
        "state_dict": head.state_dict(),
        "reads": "frames" if isinstance(head, ShieldNet) else "features",
        "hidden": head.hidden,
        "threshold": shield.threshold,
        "report": report,
    }
    if isinstance(head, ShieldNet):
        payload["input_shape"] = list(head.input_shape)
    else:
        payload["features_dim"] = head.features_dim
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


class ShieldFileError(ValueError):
    """A shield file that is missing, unreadable or does not fit the policy."""


def load_shield(path: str | Path, features_dim: int, obs_shape: tuple[int, ...] | None = None) -> Shield:
    """The shield saved at ``path``, checked against the policy's ``features_dim`` (a head on its features) or
    its observations' ``obs_shape`` (a CNN of its own on the frames).

    :raises ShieldFileError: naming the path
    """
    path = Path(path)
    if not path.is_file():
        raise ShieldFileError(f"{path}: no such shield file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        head = _build_head(payload)
        head.load_state_dict(payload["state_dict"])
        threshold = float(payload["threshold"])
    except Exception as err:  # torch raises several types for foreign or corrupt files
        raise ShieldFileError(f"{path}: not a shield file ({type(err).__name__})") from None
    if isinstance(head, ShieldNet):
        if obs_shape is not None and head.input_shape != tuple(obs_shape):
            raise ShieldFileError(f"{path}: made for frames of shape {head.input_shape}, the policy sees {obs_shape}")
    elif head.features_dim != features_dim:
        raise ShieldFileError(f"{path}: made for features of width {head.features_dim}, the policy has {features_dim}")
    head.eval()
    return Shield(head, threshold)


def _build_head(payload: dict[str, Any]) -> ShieldHead | ShieldNet:
    """An untrained head of the saved kind and sizes (files without ``reads`` predate :class:`ShieldNet`)."""
    if payload.get("reads", "features") == "frames":
        shape = tuple(int(d) for d in payload["input_shape"])
        return ShieldNet(ConvBackbone(shape[0]), shape, int(payload["hidden"]))
    return ShieldHead(int(payload["features_dim"]), int(payload["hidden"]))
