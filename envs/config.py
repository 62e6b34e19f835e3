"""Schemas of the ``env`` and ``reward`` config groups.

Every field is documented with its unit. ``None`` means "keep highway-env's own
default for this env id". Range checks raise ``ValueError("<field>: ...")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

HIGHWAY_FAMILIES = (
    "highway",
    "merge",
    "roundabout",
    "intersection",
    "exit",
    "racetrack",
    "two",
    "u",
    "lane",
    "parking",
)


@dataclass
class EnvConfig:
    """Which highway-env scene to build and what the agent observes."""

    id: str = "highway-fast-v0"
    """Any registered highway-env id, e.g. ``highway-fast-v0``, ``highway-v0``, ``merge-v0``."""
    observation: Literal["camera", "kinematics"] = "camera"
    """``camera``: stacked grayscale frames (uint8, stack x width x height); ``kinematics``: vehicle table."""
    frame_width: int = 128
    """Camera frame width [px] (along the road)."""
    frame_height: int = 64
    """Camera frame height [px] (across the road)."""
    frame_stack: int = 4
    """Number of consecutive frames stacked as channels."""
    frame_scaling: float = 1.75
    """Camera zoom [px/m]."""
    lanes_count: int | None = None
    """Number of lanes (highway envs only)."""
    vehicles_count: int | None = None
    """Number of other vehicles spawned (highway envs only)."""
    vehicles_density: float | None = None
    """Traffic density multiplier (highway envs only)."""
    duration: float | None = None
    """Episode length [s] (highway envs only)."""
    policy_frequency: int | None = None
    """Agent decisions per second [Hz]."""
    simulation_frequency: int | None = None
    """Simulation steps per second [Hz]."""

    def __post_init__(self) -> None:
        import gymnasium as gym
        import highway_env  # noqa: F401  (registers its ids)

        if self.id not in gym.registry:
            known = sorted(k for k in gym.registry if "/" not in k and k.split("-")[0] in HIGHWAY_FAMILIES)
            raise ValueError(f"id: unknown env id {self.id!r} (highway-env ids: {', '.join(known)})")
        if self.frame_width < 32 or self.frame_height < 32:
            raise ValueError("frame_width: frames must be at least 32x32 px for the CNN")
        if not 1 <= self.frame_stack <= 16:
            raise ValueError(f"frame_stack: must be in 1..16, got {self.frame_stack}")
        if self.frame_scaling <= 0:
            raise ValueError(f"frame_scaling: must be > 0, got {self.frame_scaling}")
        for name in ("lanes_count", "vehicles_count", "policy_frequency", "simulation_frequency"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "vehicles_count" else 1):
                raise ValueError(f"{name}: must be positive, got {value}")
        for name in ("vehicles_density", "duration"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be > 0, got {value}")


@dataclass
class RewardConfig:
    """Weights of the named reward terms (see :mod:`envs.rewards`).

    Each term's value lies in [0, 1]; its weight is the same-named key here.
    With ``normalize``, the weighted sum is mapped from [sum of negative weights,
    sum of positive weights] to [0, 1], as highway-env does for its own reward.
    """

    collision: float = -1.0
    """Weight of the crash indicator (1 on the step the ego crashes)."""
    high_speed: float = 0.4
    """Weight of the forward speed, linearly mapped from ``speed_range`` to [0, 1]."""
    right_lane: float = 0.1
    """Weight of the lane index, 0 on the leftmost lane and 1 on the rightmost."""
    lane_change: float = 0.0
    """Weight of the lane-change indicator (1 on a step whose target lane changed)."""
    off_road: float = 0.0
    """Weight of the off-road indicator."""
    speed_range: list[float] = field(default_factory=lambda: [20.0, 30.0])
    """Forward speeds [m/s] mapped to high_speed = 0 and 1."""
    normalize: bool = True
    """Map the reward to [0, 1] as highway-env does."""

    def __post_init__(self) -> None:
        if len(self.speed_range) != 2 or self.speed_range[0] >= self.speed_range[1]:
            raise ValueError(f"speed_range: must be [low, high] with low < high, got {self.speed_range}")

    def weights(self) -> dict[str, float]:
        """The term weights by name; every float field except settings is a term."""
        from envs.rewards import REWARD_TERMS

        return {name: float(getattr(self, name)) for name in REWARD_TERMS}
