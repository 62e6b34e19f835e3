"""Perception: the CNN backbone and its reuse as the PPO features extractor."""

from perception.backbone import ConvBackbone
from perception.extractor import FramesExtractor

__all__ = ["ConvBackbone", "FramesExtractor"]
