"""The perception CNN's convolutional backbone, shared by classification and PPO.

The backbone owns pixel normalization: it takes raw pixel values in [0, 255]
(uint8 or float) and maps them to ``(x / 255 - mean) / std`` itself, so the
classifier and the PPO features extractor see exactly the same inputs.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBackbone(nn.Module):
    """Four strided conv layers, sized for 128x64 camera frames and small enough for 28x28 digits.

    Each layer halves both spatial sizes: (C, 128, 64) -> (64, 8, 4), (1, 28, 28) -> (64, 2, 2).

    :param in_channels: input channels (the frame stack, or 1 for digits)
    :param mean: pixel mean after scaling to [0, 1]
    :param std: pixel standard deviation after scaling to [0, 1]
    """

    def __init__(self, in_channels: int, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.in_channels = in_channels
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw pixels in [0, 255] -> network input."""
        return (pixels.float() / 255.0 - self.mean) / self.std

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """:param pixels: (N, C, H, W) raw pixel values in [0, 255]
        :return: (N, flat) features"""
        return self.convs(self.normalize(pixels))

    def output_size(self, input_shape: tuple[int, int, int]) -> int:
        """Flattened feature size for a (C, H, W) input, found with one forward pass."""
        with torch.no_grad():
            return int(self(torch.zeros(1, *input_shape)).shape[1])
