"""The perception classifier (backbone + head) and its checkpoint format.

A checkpoint is ``{"format", "state_dict", "meta"}`` saved with ``torch.save``; ``meta``
holds plain data only (input shape, normalization, class names, training config,
metrics), so it loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from envs.io import atomic_write
from perception.backbone import ConvBackbone

FORMAT = "safedrive-perception/1"


class PerceptionNet(nn.Module):
    """Conv backbone + MLP head over ``len(class_names)`` classes.

    :param input_shape: (channels, height, width) of one input
    :param n_classes: number of classes
    :param mean: pixel mean in [0, 1] units (normalization lives in the backbone)
    :param std: pixel std in [0, 1] units
    :param hidden: head hidden width
    :param dropout: head dropout
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        mean: float = 0.0,
        std: float = 1.0,
        hidden: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.backbone = ConvBackbone(self.input_shape[0], mean, std)
        flat = self.backbone.output_size(self.input_shape)
        self.head = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """:param pixels: raw [0, 255] pixels, (N, C, H, W)
        :return: class logits (N, n_classes)"""
        return self.head(self.backbone(pixels))


class CheckpointError(ValueError):
    """A perception checkpoint that is missing, malformed or does not fit."""


def save_checkpoint(path: str | Path, model: PerceptionNet, meta: dict[str, Any]) -> Path:
    """Write ``model.pt`` atomically; ``meta`` must be plain data."""
    payload = {"format": FORMAT, "state_dict": model.state_dict(), "meta": meta}
    return atomic_write(path, lambda p: torch.save(payload, p))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's payload, loaded safely; raises CheckpointError with the path."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: perception checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign or corrupt files
        raise CheckpointError(f"{path}: not a readable perception checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a perception checkpoint (format {FORMAT!r} expected)")
    return payload


def load_checkpoint(path: str | Path) -> tuple[PerceptionNet, dict[str, Any]]:
    """Rebuild the classifier from ``model.pt``; returns (model in eval mode, meta)."""
    payload = read_checkpoint(path)
    meta = payload["meta"]
    model = PerceptionNet(
        tuple(meta["input_shape"]),
        len(meta["class_names"]),
        meta["mean"],
        meta["std"],
        hidden=meta["hidden"],
        dropout=meta["dropout"],
    )
    model.load_state_dict(payload["state_dict"])
    return model.eval(), meta


def check_input_shape(
    meta: dict[str, Any], frames_shape: tuple[int, ...], path: str | Path, intra_frames: list[float] | None = None
) -> None:
    """Raise CheckpointError naming both shapes if the checkpoint does not fit the env's frames.

    :param intra_frames: the env's ``intra_frames``; if given, a checkpoint pretrained on highway frames
        must have seen the same frame timing (same shape, other moments would pass unnoticed otherwise)
    """
    expected = tuple(meta["input_shape"])
    if tuple(frames_shape) != expected:
        raise CheckpointError(
            f"{path}: perception checkpoint expects input shape {expected}, "
            f"but the env's camera frames have shape {tuple(frames_shape)}"
        )
    config = meta.get("config", {})
    if intra_frames is None or config.get("dataset", {}).get("kind") != "highway":
        return
    saved = list(config.get("env", {}).get("intra_frames", []))  # checkpoints made before the key had none
    if sorted(saved) != sorted(intra_frames):
        raise CheckpointError(
            f"{path}: perception checkpoint was pretrained with env.intra_frames={saved}, "
            f"but the env has env.intra_frames={list(intra_frames)}"
        )
