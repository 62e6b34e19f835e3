"""SB3 features extractor on camera frames, built on the perception backbone."""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from perception.backbone import ConvBackbone


class FramesExtractor(BaseFeaturesExtractor):
    """Conv backbone + linear layer on stacked grayscale frames.

    Use with ``policy_kwargs=dict(normalize_images=False)``: the backbone
    normalizes raw [0, 255] pixels itself, exactly as during classification.

    :param observation_space: a channels-first uint8 ``Box`` (stack, width, height)
    :param features_dim: output width
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 256) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
            raise TypeError(f"FramesExtractor needs a 3-D Box space, got {observation_space}")
        super().__init__(observation_space, features_dim)
        self.backbone = ConvBackbone(in_channels=observation_space.shape[0])
        n_flatten = self.backbone.output_size(tuple(observation_space.shape))
        self.head = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(observations))
