"""SB3 features extractor on camera frames, built on the perception backbone."""

from __future__ import annotations

from pathlib import Path

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from perception.backbone import ConvBackbone
from perception.model import check_input_shape, read_checkpoint


class FramesExtractor(BaseFeaturesExtractor):
    """Conv backbone + linear layer on stacked grayscale frames.

    Use with ``policy_kwargs=dict(normalize_images=False)``: the backbone
    normalizes raw [0, 255] pixels itself, exactly as during classification.
    The flatten size is inferred with one forward pass.

    :param observation_space: a channels-first uint8 ``Box`` (stack, width, height)
    :param features_dim: output width
    :param mean: pixel mean in [0, 1] units (from the pretraining data)
    :param std: pixel std in [0, 1] units
    :param freeze: keep the backbone's weights fixed (requires_grad False)
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        features_dim: int = 256,
        mean: float = 0.0,
        std: float = 1.0,
        freeze: bool = False,
    ) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
            raise TypeError(f"FramesExtractor needs a 3-D Box space, got {observation_space}")
        super().__init__(observation_space, features_dim)
        self.backbone = ConvBackbone(in_channels=observation_space.shape[0], mean=mean, std=std)
        n_flatten = self.backbone.output_size(tuple(observation_space.shape))
        self.head = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())
        self.frozen = freeze
        self.backbone.requires_grad_(not freeze)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(observations))

    def load_backbone(self, checkpoint: str | Path) -> None:
        """Copy a classifier checkpoint's backbone (weights and normalization) into this extractor.

        :raises CheckpointError: missing file, foreign format, or an input shape other than the env's frames
        """
        payload = read_checkpoint(checkpoint)
        check_input_shape(payload["meta"], self._observation_space.shape, checkpoint)
        prefix = "backbone."
        weights = {k[len(prefix) :]: v for k, v in payload["state_dict"].items() if k.startswith(prefix)}
        self.backbone.load_state_dict(weights)


def extractor_kwargs(checkpoint: str | Path | None, freeze: bool, features_dim: int) -> dict:
    """``features_extractor_kwargs`` for PPO: normalization comes from the checkpoint when there is one."""
    kwargs = {"features_dim": features_dim, "freeze": freeze}
    if checkpoint is not None:
        meta = read_checkpoint(checkpoint)["meta"]
        kwargs.update(mean=float(meta["mean"]), std=float(meta["std"]))
    return kwargs
