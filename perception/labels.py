"""Ground-truth labels of a highway scene for the perception classifier.

Each frame gets one of 8 classes, the combination of three yes/no facts that a
lane-level planner needs before it acts:

- ``L``: the left lane is *unavailable*: there is no lane on the left, or a vehicle
  is beside the ego there (between ``SIDE_BEHIND`` m behind and ``SIDE_AHEAD`` m ahead);
- ``A``: a vehicle is *ahead* in the ego's lane, closer than ``NEAR_AHEAD`` m (bumper gap);
- ``R``: the right lane is unavailable, as for ``L``.

``clear`` means all three are free. All zones lie inside the camera frame
(about 51 m ahead and 22 m behind the ego at the default 128 px, 1.75 px/m).

The ``scene_brake`` label set adds a fourth fact, so 16 classes:

- ``B``: the ego must *brake* for the vehicle ahead in the lane it drives toward: the
  rule-based driver's slow-down condition at its default settings (:class:`envs.drivers.DriverParams`):
  too close to stop behind it at 3 m/s^2 with 0.3 s of headway, or closing in fast enough to fall
  under the safety monitor's RSS distance within 1 s.

Occupancy needs one frame; ``B`` needs the closing speed, which only the stack's motion
shows, so a backbone frozen after this pretraining keeps motion features a policy can brake on.
"""

from __future__ import annotations

from typing import Any

from envs.drivers import OvertakingDriver
from envs.safety_monitor import lane_neighbours
from envs.scene import gap_between, longitudinal

NEAR_AHEAD = 25.0  # m, bumper gap to a vehicle ahead in the ego lane
SIDE_AHEAD = 15.0  # m, bumper gap ahead that blocks a side lane
SIDE_BEHIND = 10.0  # m, bumper gap behind that blocks a side lane

LEFT, AHEAD, RIGHT, BRAKE = 1, 2, 4, 8
FACTS = {"L": LEFT, "A": AHEAD, "R": RIGHT, "B": BRAKE}
"""Letter of each yes/no fact -> its bit."""
LABEL_SETS = {"scene": 8, "scene_brake": 16}
"""Label set -> number of classes. Class index = bitmask of LEFT | AHEAD | RIGHT (| BRAKE)."""


def class_name(label: int) -> str:
    """``clear``, or the letters of the bits set, e.g. ``LA``, ``ARB``."""
    return "".join(c for c, bit in FACTS.items() if label & bit) or "clear"


def check_label_set(label_set: str) -> None:
    """:raises ValueError: ``label_set`` is not one of :data:`LABEL_SETS`"""
    if label_set not in LABEL_SETS:
        raise ValueError(f"labels: unknown label set {label_set!r} (known: {', '.join(LABEL_SETS)})")


def class_names(label_set: str = "scene") -> list[str]:
    """Names of the classes of ``label_set`` (see :data:`LABEL_SETS`), in index order."""
    check_label_set(label_set)
    return [class_name(i) for i in range(LABEL_SETS[label_set])]


CLASS_NAMES = class_names("scene")


def flip_label(label: int) -> int:
    """The label of the same scene mirrored across the road (left and right swap)."""
    return (label & (AHEAD | BRAKE)) | (LEFT if label & RIGHT else 0) | (RIGHT if label & LEFT else 0)


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


_DRIVER = OvertakingDriver()


def _brake_needed(env: Any) -> bool:
    ego = env.vehicle
    front, _ = lane_neighbours(ego.road, ego, getattr(ego, "target_lane_index", ego.lane_index))
    speed = float(ego.speed)
    return _DRIVER.room(front, speed) < 0 or _DRIVER.rss_short(front, speed)


def scene_label(env: Any, label_set: str = "scene") -> int:
    """Class index of the current scene of a highway-env env in ``label_set`` (see module docstring)."""
    check_label_set(label_set)
    base = env.unwrapped
    origin, dest, lane_id = base.vehicle.lane_index
    n_lanes = len(base.road.network.graph[origin][dest])
    label = AHEAD if _ahead_near(base) else 0
    if lane_id == 0 or _side_blocked(base, (origin, dest, lane_id - 1)):
        label |= LEFT
    if lane_id == n_lanes - 1 or _side_blocked(base, (origin, dest, lane_id + 1)):
        label |= RIGHT
    if label_set == "scene_brake" and _brake_needed(base):
        label |= BRAKE
    return label
