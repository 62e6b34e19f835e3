"""Ground-truth queries on a highway-env scene: neighbours, gaps and time-to-collision."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from envs.safety import time_to_collision

BOXED_IN_RANGE = 60.0
"""A lane with a vehicle ahead closer than this [m] (two seconds at 30 m/s) is blocked."""


def longitudinal(lane: Any, vehicle: Any) -> float:
    """Position of ``vehicle`` along ``lane`` [m]."""
    return float(lane.local_coordinates(vehicle.position)[0])


def gap_between(lane: Any, rear: Any, front: Any) -> float:
    """Bumper-to-bumper distance [m] from ``rear`` to ``front`` along ``lane``."""
    return longitudinal(lane, front) - longitudinal(lane, rear) - (rear.LENGTH + front.LENGTH) / 2


def neighbours(env: Any, lane_index: Any = None) -> tuple[Any, Any]:
    """(front, rear) vehicles of the ego in ``lane_index`` (default: its own lane)."""
    return env.road.neighbour_vehicles(env.vehicle, lane_index or env.vehicle.lane_index)


def front_ttc(env: Any, lane_index: Any = None) -> float:
    """Time-to-collision [s] with the vehicle ahead in ``lane_index``; ``inf`` if none or opening."""
    ego = env.vehicle
    lane_index = lane_index or ego.lane_index
    front, _ = neighbours(env, lane_index)
    if front is None:
        return math.inf
    lane = env.road.network.get_lane(lane_index)
    return time_to_collision(gap_between(lane, ego, front), ego.speed, front.speed)


def ego_ttc(env: Any) -> float:
    """The ego's time-to-collision [s]: its lane, and its target lane while changing lanes."""
    ego = env.vehicle
    ttc = front_ttc(env, ego.lane_index)
    target = getattr(ego, "target_lane_index", None)
    if target is not None and target != ego.lane_index:
        ttc = min(ttc, front_ttc(env, target))
    return ttc


def boxed_in(env: Any, reach: float = BOXED_IN_RANGE) -> bool:
    """Whether traffic caps the ego's speed: its lane and each adjacent lane have a vehicle ahead within ``reach`` [m].

    A boxed-in ego can go no faster than the cars ahead, whatever it decides; evaluations
    report the share of such steps to tell a timid policy from dense traffic.
    """
    ego = env.vehicle
    origin, dest, lane_id = ego.lane_index
    for side_id in (lane_id - 1, lane_id, lane_id + 1):
        if not 0 <= side_id < len(env.road.network.graph[origin][dest]):
            continue
        lane_index = (origin, dest, side_id)
        front, _ = neighbours(env, lane_index)
        if front is None or gap_between(env.road.network.get_lane(lane_index), ego, front) > reach:
            return False
    return True


CRASH_KINDS = ("front", "front_at_floor", "rear", "ego_lane_change", "cut_in", "other")
"""How :func:`crash_kind` names a crash."""

LANE_CHANGE_OFFSET = 1.0
"""Lateral offset [m] from the lane centre beyond which a vehicle counts as changing lanes."""


def changing_lanes(env: Any, vehicle: Any) -> bool:
    """Whether ``vehicle`` is between lanes: heading for another lane, or off its lane's centre."""
    target = getattr(vehicle, "target_lane_index", None)
    if target is not None and target != vehicle.lane_index:
        return True
    lane = env.road.network.get_lane(vehicle.lane_index)
    return abs(float(lane.local_coordinates(vehicle.position)[1])) > LANE_CHANGE_OFFSET


def crash_partner(env: Any) -> Any:
    """The crashed vehicle nearest to the ego, or None (e.g. the ego left the road alone)."""
    ego = env.vehicle
    crashed = [v for v in env.road.vehicles if v is not ego and getattr(v, "crashed", False)]
    if not crashed:
        return None
    return min(crashed, key=lambda v: math.dist(v.position, ego.position))


@dataclass(frozen=True)
class Placement:
    """Where a vehicle was at the start of a decision step."""

    x: float
    """Position [m] along the ego's lane."""
    lane_index: tuple
    changing_lanes: bool
    speed: float
    """Speed [m/s]."""
    at_floor: bool
    """Held at its lowest target speed (a meta-action vehicle whose SLOWER can brake no further)."""


def placements(env: Any) -> dict[int, Placement]:
    """Every vehicle's :class:`Placement`, keyed by ``id(vehicle)``.

    Taken before a decision step, it lets :func:`crash_kind` read the crash from the state
    before it: after a crash highway-env pushes the two cars apart and lets them roll on.
    """
    lane = env.road.network.get_lane(env.vehicle.lane_index)
    return {
        id(v): Placement(longitudinal(lane, v), v.lane_index, changing_lanes(env, v), float(v.speed), at_speed_floor(v))
        for v in env.road.vehicles
    }


FLOOR_TOLERANCE = 0.5
"""A vehicle within this [m/s] of its lowest target speed, and targeting it, is held at that floor."""


def floor_speed(vehicle: Any) -> float | None:
    """The lowest meta-action target speed [m/s] of ``vehicle``: SLOWER cannot take it below; None without target
    speeds."""
    speeds = getattr(vehicle, "target_speeds", None)
    return float(speeds[0]) if speeds is not None and len(speeds) else None


def at_speed_floor(vehicle: Any) -> bool:
    """Whether ``vehicle`` targets its lowest meta-action speed and has reached it (False without target speeds)."""
    floor = floor_speed(vehicle)
    if floor is None or int(getattr(vehicle, "speed_index", -1)) != 0:
        return False
    return float(vehicle.speed) <= floor + FLOOR_TOLERANCE


def _changed_lanes(vehicle: Any, start: Placement) -> bool:
    """Whether ``vehicle`` was between lanes at some time during the step that started at ``start``."""
    target = getattr(vehicle, "target_lane_index", None)
    return start.changing_lanes or (target is not None and target != start.lane_index)


def crash_kind(env: Any, before: dict[int, Placement]) -> str:
    """How the ego's crash happened, one of :data:`CRASH_KINDS`, read at the end of the crash step.

    ``ego_lane_change``: the ego was changing lanes; ``cut_in``: the other vehicle was;
    otherwise ``front`` (the ego ran into the vehicle ahead), ``front_at_floor`` (the same, but the ego
    started the step held at its lowest target speed behind a slower car: SLOWER could brake no
    further, only a lane change or the monitor's emergency brake could help) or ``rear`` (it was hit
    from behind); ``other``: no crashed vehicle near the ego.

    :param before: :func:`placements` at the start of the crash step
    """
    partner = crash_partner(env)
    ego = env.vehicle
    if partner is None or id(ego) not in before or id(partner) not in before:
        return "other"
    if _changed_lanes(ego, before[id(ego)]):
        return "ego_lane_change"
    if _changed_lanes(partner, before[id(partner)]):
        return "cut_in"
    mine, theirs = before[id(ego)], before[id(partner)]
    if theirs.x <= mine.x:
        return "rear"
    return "front_at_floor" if mine.at_floor and theirs.speed < mine.speed else "front"


def hand_ego_to_idm(env: Any) -> Any:
    """Replace the ego by highway-env's IDM/MOBIL driver in the same state; returns the new ego.

    The meta-actions sent afterwards are ignored: IDMVehicle decides on its own.
    """
    from highway_env.vehicle.behavior import IDMVehicle
    from highway_env.vehicle.graphics import VehicleGraphics

    base = env.unwrapped
    ego = base.vehicle
    driver = IDMVehicle.create_from(ego)
    driver.color = VehicleGraphics.EGO_COLOR  # drawn as the ego, not as traffic
    base.road.vehicles[base.road.vehicles.index(ego)] = driver
    base.controlled_vehicles[0] = driver
    base.action_type.controlled_vehicle = driver
    return driver
