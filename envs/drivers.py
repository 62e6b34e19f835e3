"""A rule-based overtaking driver on ground-truth kinematics.

It chooses highway-env meta-actions the way a careful human might: take the lane that
lets it travel farthest over the next few seconds, drive at the top target speed while
the lane ahead has room for it, and slow down early enough that it never needs hard
braking, nor comes closer than the safety monitor's RSS distance within the next second.
Every action it proposes first passes the safety monitor's own decision checks
(:class:`envs.safety_monitor.ActionChecker`), so the monitor has little left to override.

It reads the simulator state, never the camera: it is a reference (the ``rules`` baseline)
and a teacher for imitation, not a deployable policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.config import SafetyConfig
from envs.safety import safe_longitudinal_distance, time_to_collision
from envs.safety_monitor import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER, ActionChecker, Neighbour, lane_neighbours
from envs.scene import floor_speed


@dataclass(frozen=True)
class DriverParams:
    """How the overtaking driver trades speed against margin."""

    top_speed: float = 30.0
    """The speed [m/s] it plans for: highway-env's highest target speed."""
    horizon: float = 5.0
    """Lanes are compared by the distance [m] they allow in this many seconds."""
    headway: float = 0.3
    """Time gap [s] it keeps to the vehicle ahead."""
    planning_braking: float = 3.0
    """Deceleration [m/s^2] it plans with: the emergency brake's trigger, far below its 8."""
    standstill_gap: float = 2.0
    """Extra distance [m] kept to the vehicle ahead."""
    lane_change_gain: float = 2.0
    """A lane change must gain at least this distance [m] over the horizon."""
    rss_lookahead: float = 1.0
    """Seconds [s] of closing in it anticipates: it slows down (and will not speed up) when the
    gap ahead, shrunk by that much closing, would fall short of the monitor's RSS distance,
    which is where the monitor's proper-response braking would step in. 0 = no anticipation."""
    floor_ttc: float = 0.0
    """Seconds [s]: a lane whose car ahead the ego would reach within this long at its lowest target speed
    is a dead end, worth only the gap to that car when lanes are compared. The ego cannot follow a car
    slower than that floor, so it leaves such a lane while a neighbour is open, before a car alongside
    seals it in. 0 = lanes are compared on reach alone, as if the ego could slow to any leader's speed."""

    def __post_init__(self) -> None:
        for name in ("top_speed", "horizon", "planning_braking"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("headway", "standstill_gap", "lane_change_gain", "rss_lookahead", "floor_ttc"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")


class OvertakingDriver:
    """Rule-based meta-action driver (see the module docstring).

    :param params: its driving style
    :param safety: the monitor thresholds its proposals must pass
    """

    def __init__(self, params: DriverParams | None = None, safety: SafetyConfig | None = None) -> None:
        self.params = params or DriverParams()
        self.checker = ActionChecker(safety or SafetyConfig())

    def reach(self, front: Neighbour | None, floor: float = 0.0) -> float:
        """Distance [m] the ego can cover within the horizon in a lane whose leader is ``front``; only the gap
        when the ego, at its lowest target speed ``floor`` [m/s], would reach that leader within ``floor_ttc``."""
        p = self.params
        if front is None:
            return p.top_speed * p.horizon
        if p.floor_ttc > 0 and time_to_collision(front.gap, floor, front.speed) < p.floor_ttc:
            return max(front.gap, 0.0)
        return min(p.top_speed * p.horizon, max(front.gap + (front.speed * (p.horizon - p.headway)), 0.0))

    def room(self, front: Neighbour | None, speed: float) -> float:
        """Spare distance [m] behind ``front`` at ``speed``: negative means slow down now."""
        if front is None:
            return float("inf")
        p = self.params
        closing = max(0.0, speed - front.speed)
        return front.gap - p.standstill_gap - p.headway * speed - closing**2 / (2 * p.planning_braking)

    def rss_short(self, front: Neighbour | None, speed: float) -> bool:
        """Whether, within ``rss_lookahead`` of closing in at ``speed``, the gap to ``front`` falls below RSS's."""
        if front is None:
            return False
        closing = max(0.0, speed - front.speed)
        gap = front.gap - closing * self.params.rss_lookahead
        return gap < safe_longitudinal_distance(speed, front.speed, self.checker.rss)

    def act(self, env: Any) -> int:
        """The meta-action for the ego of the (unwrapped) highway-env ``env``."""
        ego = env.vehicle
        lane = getattr(ego, "target_lane_index", ego.lane_index)
        front, _ = lane_neighbours(ego.road, ego, lane)
        if lane == ego.lane_index:  # not already changing lanes
            change = self._lane_change(ego, lane, front)
            if change is not None:
                return change
        faster = self.checker.target_speed(ego, FASTER)
        if self.room(front, self.params.top_speed) > 0 and not self.rss_short(front, faster):
            if self.checker.check(ego, FASTER) is None:
                return FASTER
        if self.room(front, float(ego.speed)) < 0 or self.rss_short(front, float(ego.speed)):
            return SLOWER
        return IDLE if self.checker.check(ego, IDLE) is None else SLOWER

    def _lane_change(self, ego: Any, lane: tuple, front: Neighbour | None) -> int | None:
        """The lane change to take from ``lane`` (whose leader is ``front``), if one gains enough reach."""
        floor = floor_speed(ego) or 0.0
        current = self.reach(front, floor)
        origin, dest, lane_id = lane
        options = []
        for action, side_id in ((LANE_LEFT, lane_id - 1), (LANE_RIGHT, lane_id + 1)):
            if 0 <= side_id < len(ego.road.network.graph[origin][dest]):
                side_front, _ = lane_neighbours(ego.road, ego, (origin, dest, side_id))
                options.append((self.reach(side_front, floor), action))
        for reach, action in sorted(options, reverse=True):
            if reach > current + self.params.lane_change_gain and self.checker.check(ego, action) is None:
                return action
        return None
