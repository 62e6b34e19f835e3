"""Ground-truth queries on a highway-env scene: neighbours, gaps and time-to-collision."""

from __future__ import annotations

import math
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
