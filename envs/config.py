"""Schemas of the ``env`` and ``reward`` config groups.

Every field is documented with its unit. ``None`` means "keep highway-env's own
default for this env id". Range checks raise ``ValueError("<field>: ...")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from envs.scene import BOXED_IN_RANGE

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
    intra_frames: list[float] = field(default_factory=list)
    """Extra camera frames from inside the last decision, as lags [s] before the newest frame (multiples of
    the simulation step, shorter than a decision; highway-fast-v0: 0.2-0.8), stacked just before the newest
    frame. [] = one frame per decision. Observations get ``frame_stack + len(intra_frames)`` channels."""
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
        if self.intra_frames and self.observation != "camera":
            raise ValueError("intra_frames: extra frames need observation=camera")
        if any(lag <= 0 for lag in self.intra_frames) or len(set(self.intra_frames)) != len(self.intra_frames):
            raise ValueError(f"intra_frames: lags must be distinct and > 0 [s], got {self.intra_frames}")
        for name in ("lanes_count", "vehicles_count", "policy_frequency", "simulation_frequency"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "vehicles_count" else 1):
                raise ValueError(f"{name}: must be positive, got {value}")
        for name in ("vehicles_density", "duration"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be > 0, got {value}")

    @property
    def frames_shape(self) -> tuple[int, int, int]:
        """Shape of a camera observation: (channels, width, height)."""
        return (self.frame_stack + len(self.intra_frames), self.frame_width, self.frame_height)


@dataclass
class RewardConfig:
    """Weights of the named reward terms (see :mod:`envs.rewards`).

    Each term's value lies in [0, 1] (``headway``: [-1, 1]); its weight is the
    same-named key here. With ``normalize``, the weighted sum is mapped from its
    lowest to its highest possible value onto [0, 1], as highway-env does.
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
    comfort: float = 0.0
    """Weight of the action-change indicator (1 when the executed action differs from the last)."""
    override: float = 0.0
    """Weight of the safety-override indicator (1 when the monitor replaced the action or braked)."""
    override_spares_slower: bool = False
    """true: a step on which the policy proposed SLOWER and the monitor only braked harder (its emergency
    brake, nothing else) is not an override for the ``override`` term, so the term separates a policy
    that asked to brake from one that left the braking to the monitor. The monitor's own
    ``info["safety"]["overridden"]`` (and the evaluation's override rate) still counts that step."""
    override_repeat: float = 0.0
    """Weight of the repeated-override indicator (1 when the ``override`` term is 1 on this step and was on the
    step before), on top of override: the price of a second, third... consecutive override, so under a shadow
    monitor each ignored warning costs more than the first."""
    emergency_brake: float = 0.0
    """Weight of the emergency-brake indicator (1 when the monitor's AEB braked during the step), on top of override."""
    lane_change_refused: float = 0.0
    """Weight of the refused-lane-change indicator (1 when the monitor refused or aborted a lane change)."""
    floor_trap: float = 0.0
    """Weight of the floor-trap indicator (1 when the ego ends the step held at its lowest target speed
    behind a slower vehicle less than ``floor_trap_ttc`` ahead: no meta-action brakes harder)."""
    floor_trap_ttc: float = 8.0
    """Time-to-collision [s] with that slower vehicle below which the floor-trap indicator is 1."""
    slow_leader: float = 0.0
    """Weight of the slow-leader indicator (1 when the ego, at its lowest target speed, would close the gap to
    the vehicle ahead in the lane it is in or heading for within ``slow_leader_ttc``: a floor trap in the making)."""
    slow_leader_ttc: float = 10.0
    """Time-to-collision [s] at the ego's lowest target speed below which the slow-leader indicator is 1."""
    bare_crash: float = 0.0
    """Weight of the bare-crash indicator (1 on an overridden step whose proposal, replayed without the
    monitor, crashed within ``bare_crash_horizon`` decisions: :mod:`envs.bare_replay`), on top of override.
    Non-zero installs the replay (with the monitor only)."""
    bare_crash_horizon: int = 3
    """Decisions [1 s each on highway-fast] the bare replay runs: the proposed action, then SLOWER."""
    boxed_in: float = 0.0
    """Weight of the boxed-in indicator (1 when the ego's lane and each adjacent lane have a vehicle ahead within
    ``boxed_in_reach``: traffic caps its speed and no lane change leads out of the pack)."""
    boxed_in_reach: float = BOXED_IN_RANGE
    """Distance ahead [m] within which a vehicle closes a lane for the boxed-in indicator (default: the evaluation's
    boxed-in split, 60 m)."""
    headway: float = 0.0
    """Weight of the potential-based TTC shaping, in [-1, 1] (positive weight = keep away from the car ahead)."""
    headway_ttc: float = 4.0
    """Time-to-collision [s] at and above which the headway danger is 0."""
    shaping_gamma: float = 0.8
    """Discount of the potential-based shaping; must equal the agent's gamma."""
    speed_range: list[float] = field(default_factory=lambda: [20.0, 30.0])
    """Forward speeds [m/s] mapped to high_speed = 0 and 1."""
    normalize: bool = True
    """Map the reward to [0, 1] as highway-env does."""

    def __post_init__(self) -> None:
        if len(self.speed_range) != 2 or self.speed_range[0] >= self.speed_range[1]:
            raise ValueError(f"speed_range: must be [low, high] with low < high, got {self.speed_range}")
        for name in ("headway_ttc", "floor_trap_ttc", "slow_leader_ttc", "boxed_in_reach"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.bare_crash_horizon < 1:
            raise ValueError(f"bare_crash_horizon: must be >= 1, got {self.bare_crash_horizon}")
        if not 0 < self.shaping_gamma <= 1:
            raise ValueError(f"shaping_gamma: must be in (0, 1], got {self.shaping_gamma}")

    def weights(self) -> dict[str, float]:
        """The term weights by name (the fields named like registered terms)."""
        from envs.rewards import REWARD_TERMS

        return {name: float(getattr(self, name)) for name in REWARD_TERMS}


@dataclass
class SafetyConfig:
    """The safety monitor's thresholds (group ``safety``); see :mod:`envs.safety_monitor`.

    The RSS terms are the monitor's *working* parameters, chosen for highway-env's
    traffic (README, "Safety monitor"), not the paper's conservative defaults.
    """

    enabled: bool = True
    """false = the monitor is not installed (``safety=off``)."""
    response_time: float = 0.2
    """RSS rho [s]: the monitor reacts within one simulation step (0.2 s at 5 Hz)."""
    accel_max: float = 1.0
    """RSS: acceleration the ego may still apply during the response time [m/s^2]."""
    brake_min: float = 8.0
    """RSS: braking the ego is guaranteed to apply after it [m/s^2]; at most ``emergency_braking``,
    which the monitor itself applies."""
    brake_max: float = 6.0
    """RSS: hardest braking of other vehicles [m/s^2] (highway-env's IDM never exceeds 6); also the
    braking a follower is assumed to manage when the ego changes lanes in front of it."""
    ttc_min: float = 3.0
    """A proposed action must keep the time-to-collision above this [s]."""
    cut_in_ttc: float = 0.0
    """FASTER is refused while a slower car ahead in a side lane would be closer than this
    time-to-collision [s] if it cut in; 0 disables the check (the emergency brake still covers cut-ins)."""
    max_imposed_braking: float = 3.0
    """A lane change may not force the new follower to brake harder than this [m/s^2]."""
    emergency_braking: float = 8.0
    """Deceleration of the emergency brake [m/s^2]: below the agent's SLOWER, which stops at 20 m/s."""
    aeb_trigger: float = 3.0
    """Engage the emergency brake when avoiding the vehicle ahead needs more braking than this [m/s^2]."""
    standstill_gap: float = 2.0
    """The emergency brake aims to stop closing in this far [m] behind the vehicle ahead."""
    exact_braking_need: bool = False
    """Behind a braking car, the emergency brake and the lane-change abort use the least deceleration
    that avoids it (true), or the upper bound of the relative-motion and stop-distance conditions
    (false, the default: it also brakes for a hard-braking car far ahead, a pressure the default agent's
    training relies on; README, Results, "Safety monitor")."""
    shadow: bool = False
    """true: the monitor only watches: every check and reflex runs and ``info`` reports what it would have
    done (``overridden``, ``reason``, the ``override`` reward term charges it), but the proposed action is
    executed and nothing is braked, aborted or steered. For training envs where the policy meets the
    crashes the monitor would have hidden, at the monitored envs' prices (``agent.shadow_envs``)."""

    def __post_init__(self) -> None:
        for name in ("response_time", "accel_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        positive = ("brake_min", "brake_max", "ttc_min", "max_imposed_braking", "emergency_braking", "aeb_trigger")
        if self.standstill_gap < 0:
            raise ValueError(f"standstill_gap: must be >= 0, got {self.standstill_gap}")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.aeb_trigger > self.emergency_braking:
            raise ValueError("aeb_trigger: must not exceed emergency_braking")
        if self.brake_min > self.emergency_braking:
            raise ValueError("brake_min: the ego cannot be guaranteed more braking than emergency_braking")
        if self.cut_in_ttc < 0:
            raise ValueError(f"cut_in_ttc: must be >= 0 (0 disables), got {self.cut_in_ttc}")


@dataclass
class FaultsConfig:
    """Camera faults (group ``faults``), applied to the camera frames only, never to the monitor."""

    dropout: float = 0.0
    """Probability that a new frame is blank (all zeros)."""
    noise_std: float = 0.0
    """Standard deviation of Gaussian pixel noise [grey levels]."""
    freeze: float = 0.0
    """Probability that a new frame repeats the previous one."""

    def __post_init__(self) -> None:
        for name in ("dropout", "freeze"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be a probability in [0, 1], got {getattr(self, name)}")
        if self.noise_std < 0:
            raise ValueError(f"noise_std: must be >= 0, got {self.noise_std}")

    @property
    def active(self) -> bool:
        return self.dropout > 0 or self.noise_std > 0 or self.freeze > 0

    def check_env(self, env: EnvConfig) -> None:
        """Raise ``ValueError`` if active faults cannot apply to ``env``'s observations."""
        if not self.active:
            return
        if env.observation != "camera":
            raise ValueError("faults: camera faults need env.observation=camera")
        if env.intra_frames:
            raise ValueError("faults: camera faults model one frame per decision; set env.intra_frames=[]")
