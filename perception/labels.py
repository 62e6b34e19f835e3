"""Ground-truth labels of a highway scene for the perception classifier.

Each frame gets one of 8 classes, the combination of three yes/no facts that a
lane-level planner needs before it acts:

- ``L``: the left lane is *unavailable*: there is no lane on the left, or a vehicle
  is beside the ego there (between ``SIDE_BEHIND`` m behind and ``SIDE_AHEAD`` m ahead);
- ``A``: a vehicle is *ahead* in the ego's lane, closer than ``NEAR_AHEAD`` m (bumper gap);
- ``R``: the right lane is unavailable, as for ``L``.

``clear`` means all three are free. All zones lie inside the camera frame
(about 51 m ahead and 22 m behind the ego at the default 128 px, 1.75 px/m).
"""

from __future__ import annotations

from typing import Any

from envs.scene import gap_between, longitudinal

NEAR_AHEAD = 25.0  # m, bumper gap to a vehicle ahead in the ego lane
SIDE_AHEAD = 15.0  # m, bumper gap ahead that blocks a side lane
SIDE_BEHIND = 10.0  # m, bumper gap behind that blocks a side lane

LEFT, AHEAD, RIGHT = 1, 2, 4
CLASS_NAMES = ["clear", "L", "A", "LA", "R", "LR", "AR", "LAR"]
"""Class index = bitmask of LEFT | AHEAD | RIGHT."""


def flip_label(label: int) -> int:
    """The label of the same scene mirrored across the road (left and right swap)."""
    return (label & AHEAD) | (LEFT if label & RIGHT else 0) | (RIGHT if label & LEFT else 0)


def _side_blocked(env: Any, lane_index: tuple) -> bool:
    ego = env.vehicle
    lane = env.road.network.get_lane(lane_index)
    for other in env.road.vehicles:
        if other is ego or other.lane_index != lane_index:
            continue
        ahead = longitudinal(lane, other) >= longitudinal(lane, ego)
        gap = gap_between(lane, ego, other) if ahead else gap_between(lane, other, ego)
        if gap <= (SIDE_AHEAD if ahead else SIDE_BEHIND):
            return True
    return False


def _ahead_near(env: Any) -> bool:
    ego = env.vehicle
    lane = env.road.network.get_lane(ego.lane_index)
    for other in env.road.vehicles:
        if other is ego or other.lane_index != ego.lane_index:
            continue
        if longitudinal(lane, other) >= longitudinal(lane, ego) and gap_between(lane, ego, other) <= NEAR_AHEAD:
            return True
    return False


def scene_label(env: Any) -> int:
    """Class index of the current scene of a highway-env env (see module docstring)."""
    base = env.unwrapped
    origin, dest, lane_id = base.vehicle.lane_index
    n_lanes = len(base.road.network.graph[origin][dest])
    label = AHEAD if _ahead_near(base) else 0
    if lane_id == 0 or _side_blocked(base, (origin, dest, lane_id - 1)):
        label |= LEFT
    if lane_id == n_lanes - 1 or _side_blocked(base, (origin, dest, lane_id + 1)):
        label |= RIGHT
    return label
