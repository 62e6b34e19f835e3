"""Schemas of the perception configs: datasets, classifier training, and reuse in PPO."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from envs.config import EnvConfig
from perception.labels import check_label_set


@dataclass
class DatasetConfig:
    """Where the classifier's images come from (group ``dataset``)."""

    kind: Literal["highway", "mnist"] = "highway"
    """``highway``: generated scene frames; ``mnist``: the four standard IDX files."""
    path: str = "data/highway_scenes"
    """highway: where the generated dataset lives (made if missing); mnist: dir with the IDX files."""
    episodes: int = 600
    """highway: episodes rolled out."""
    seed: int = 0
    """highway: seed of the rollouts, the policy mix and the split."""
    val_fraction: float = 0.15
    """Fraction of episodes (highway) or training images (mnist) held out for validation."""
    test_fraction: float = 0.15
    """highway: fraction of episodes held out for the test split."""
    vehicles_density: list[float] = field(default_factory=lambda: [1.0, 1.5, 2.0])
    """highway: traffic densities cycled over episodes, for more crowded scenes."""
    workers: int | None = None
    """highway: processes generating episodes; null = number of CPUs."""
    labels: Literal["scene", "scene_brake"] = "scene"
    """highway: ``scene``, 8 occupancy classes (left, ahead, right); ``scene_brake`` adds whether the ego
    must brake for the vehicle ahead, 16 classes (:mod:`perception.labels`)."""

    def __post_init__(self) -> None:
        if self.episodes < 3:
            raise ValueError(f"episodes: need at least 3 (one per split), got {self.episodes}")
        if not 0 < self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ValueError("val_fraction: fractions must lie in (0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction: val_fraction + test_fraction must be < 1")
        if not self.vehicles_density or min(self.vehicles_density) <= 0:
            raise ValueError("vehicles_density: need positive densities")
        check_label_set(self.labels)


@dataclass
class ClassifierTrainConfig:
    """The torch training loop (group-free key ``train``)."""

    epochs: int = 20
    """Passes over the training split."""
    batch_size: int = 64
    """Images per gradient step."""
    lr: float = 2e-3
    """Adam step size."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    hidden: int = 128
    """Width of the classification head's hidden layer."""
    dropout: float = 0.3
    """Dropout before the last layer."""
    augment: bool = True
    """highway: mirror across the road (swapping left/right labels) + pixel noise; mnist: shifts of up to 2 px."""
    balance: bool = True
    """Weight the loss by inverse class frequency, for imbalanced classes."""
    seed: int = 0
    """Torch seed."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr: must be in (0, 1), got {self.lr}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: must be in [0, 1), got {self.dropout}")


@dataclass
class PerceptionTrainConfig:
    """Everything ``scripts/train_perception.py`` needs."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """Camera settings of the generated highway frames (must match the agent's env)."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: ClassifierTrainConfig = field(default_factory=ClassifierTrainConfig)
    name: str = "default"
    """Output name: ``runs/perception/<name>/`` unless ``out`` is set."""
    out: str | None = None
    """Output dir for model.pt, metrics.json and confusion_matrix.png."""

    def __post_init__(self) -> None:
        if self.env.observation != "camera":
            raise ValueError("env.observation: perception needs camera frames")


@dataclass
class PerceptionConfig:
    """How the PPO agent's CNN starts (group ``perception`` of train_agent)."""

    checkpoint: str | None = None
    """A ``model.pt`` from train_perception; null = the same architecture trained from scratch."""
    freeze: bool = False
    """Keep the pretrained backbone fixed during PPO (only with a checkpoint)."""

    def __post_init__(self) -> None:
        if self.freeze and self.checkpoint is None:
            raise ValueError("freeze: needs perception.checkpoint (a frozen random backbone learns nothing)")
