"""Ground-truth scene facts a camera should show: gaps and closing speeds around the ego, and its speed.

A learner may regress them from its frames as an auxiliary task, so that its features encode what a
braking or lane-change decision depends on. The env only exposes them; it knows no learner.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.scene import gap_between

FRONT_RANGE = 50.0
"""Gaps ahead are capped here [m]: about as far as the 128x64 camera frame reaches ahead (~51 m)."""
REAR_RANGE = 20.0
"""Gaps behind are capped here [m]: the frame reaches ~22 m behind."""
SPEED_SCALE = 10.0
"""Closing speeds are divided by this [m/s] and clipped to [-1, 1]."""
SPEED_OFFSET = 20.0
"""The ego's speed is reported as (speed - this) / ``SPEED_SCALE``: 20-30 m/s map to 0-1."""

FACT_NAMES = (
    "front_gap",
    "front_closing",
    "left_front_gap",
    "left_front_closing",
    "right_front_gap",
    "right_front_closing",
    "left_rear_gap",
    "left_rear_closing",
    "right_rear_gap",
    "right_rear_closing",
    "ego_speed",
)
"""The entries of :func:`scene_facts`, in order. Gaps are bumper to bumper, divided by their range and
capped at 1 (1: no vehicle within range; 0 for a lane that does not exist, which blocks as much as a
car alongside); closing speeds are positive when the gap shrinks (0 without a vehicle)."""


def _lane_facts(env: Any, lane_id: int) -> tuple[float, float, float, float]:
    """(front gap, front closing, rear gap, rear closing) in lane ``lane_id`` of the ego's road segment, normalized."""
    ego = env.vehicle
    origin, dest, _ = ego.lane_index
    if not 0 <= lane_id < len(env.road.network.graph[origin][dest]):
        return 0.0, 0.0, 0.0, 0.0
    lane_index = (origin, dest, lane_id)
    lane = env.road.network.get_lane(lane_index)
    front, rear = env.road.neighbour_vehicles(ego, lane_index)
    out = [1.0, 0.0, 1.0, 0.0]
    if front is not None:
        gap = gap_between(lane, ego, front)
        if gap < FRONT_RANGE:
            out[0:2] = max(gap, 0.0) / FRONT_RANGE, float(np.clip((ego.speed - front.speed) / SPEED_SCALE, -1, 1))
    if rear is not None:
        gap = gap_between(lane, rear, ego)
        if gap < REAR_RANGE:
            out[2:4] = max(gap, 0.0) / REAR_RANGE, float(np.clip((rear.speed - ego.speed) / SPEED_SCALE, -1, 1))
    return out[0], out[1], out[2], out[3]


def scene_facts(env: Any) -> np.ndarray:
    """The :data:`FACT_NAMES` of the ego's current state, float32, read from the simulator's ground truth.

    :param env: a highway-env env (or a wrapper of one)
    """
    base = env.unwrapped
    lane_id = base.vehicle.lane_index[2]
    own, left, right = (_lane_facts(base, lane_id + offset) for offset in (0, -1, 1))
    ego_speed = (base.vehicle.speed - SPEED_OFFSET) / SPEED_SCALE
    facts = [own[0], own[1], left[0], left[1], right[0], right[1], left[2], left[3], right[2], right[3], ego_speed]
    return np.asarray(facts, dtype=np.float32)


class SceneFacts(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Add the scene's ground-truth facts to ``info`` (for a learner's auxiliary loss).

    - observation, action, reward, termination: unchanged.
    - info: ``scene_facts``, :func:`scene_facts` of the state the returned observation shows, after
      ``reset`` and after every ``step``.

    :param env: a highway-env environment
    """

    def __init__(self, env: gym.Env) -> None:
        if not hasattr(env.unwrapped, "road"):
            raise TypeError("SceneFacts needs a highway-env environment")
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "scene_facts": scene_facts(self.env)}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "scene_facts": scene_facts(self.env)}
