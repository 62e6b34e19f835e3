"""Perception: the CNN backbone, its classifier, datasets, and its reuse as the PPO features extractor."""

from perception.backbone import ConvBackbone
from perception.extractor import FramesExtractor, extractor_kwargs
from perception.model import CheckpointError, PerceptionNet, load_checkpoint

__all__ = ["CheckpointError", "ConvBackbone", "FramesExtractor", "PerceptionNet", "extractor_kwargs", "load_checkpoint"]
