"""Safety monitor: a redundant layer that checks every action on ground-truth kinematics.

It never reads the camera or any learned model: its only input is the simulator's
vehicle states, so a perception failure cannot blind it.

Three reflexes:
- at each decision, the proposed meta-action is checked (RSS longitudinal distance,
  time-to-collision, and for lane changes the gaps ahead and behind in the target
  lane and the braking imposed on the new follower); an unsafe one is replaced;
- at every *simulation* step, an emergency brake (AEB) decelerates harder than the
  agent's SLOWER can (which stops at 20 m/s) when the vehicle ahead would
  otherwise be hit. It reacts within one simulation step, not one decision;
- at every simulation step of a lane change, the manoeuvre is aborted if the
  target lane fills up (another car merging into the same gap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from envs.config import SafetyConfig
from envs.safety import RSSParams, safe_longitudinal_distance, time_to_collision

LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = 0, 1, 2, 3, 4
SEARCH_RANGE = 120.0  # m along the road; nothing farther matters within a 1 s decision
REFLEX_REASONS = ("evasive_steer", "lane_change_aborted", "emergency_brake")
"""Reasons of overrides made between decisions; every other reason is the decision check's verdict."""


class _ReflexHook:
    """Stands in for ``road.act``: the road's own act, then the monitor's per-frame reflexes.

    A plain object rather than a closure, so that ``copy.deepcopy`` (a planner copying the
    env to look ahead) and pickling rebind it to the copied road and monitor; a closure
    would keep driving the original road's vehicles from the copy.
    """

    def __init__(self, road: Any, monitor: SafetyMonitor) -> None:
        self.road = road
        self.monitor = monitor

    def __call__(self) -> None:
        type(self.road).act(self.road)
        self.monitor._reflexes(self.monitor.env.unwrapped.vehicle)


@dataclass
class Neighbour:
    """The nearest vehicle ahead or behind in a lane."""

    gap: float
    """Bumper-to-bumper distance [m]."""
    speed: float
    """Its speed [m/s]."""
    accel: float
    """Its current acceleration [m/s^2] (negative when braking)."""


def lane_neighbours(road: Any, ego: Any, lane_index: tuple) -> tuple[Neighbour | None, Neighbour | None]:
    """Nearest vehicles ahead and behind the ego in ``lane_index``.

    A vehicle counts if any part of it overlaps the lane or if it is changing into it:
    a car halfway across a lane line is in both lanes.
    """
    lane = road.network.get_lane(lane_index)
    s_ego = lane.local_coordinates(ego.position)[0]
    half_lane = lane.width_at(s_ego) / 2
    front = rear = None
    x_ego = ego.position[0]
    for v in road.vehicles:
        if v is ego or abs(v.position[0] - x_ego) > SEARCH_RANGE:
            continue
        s_v, lateral = lane.local_coordinates(v.position)
        overlaps = abs(lateral) < half_lane + v.WIDTH / 2
        if not overlaps and getattr(v, "target_lane_index", None) != lane_index:
            continue
        ds = s_v - s_ego
        gap = abs(ds) - (v.LENGTH + ego.LENGTH) / 2
        accel = float(v.action.get("acceleration", 0.0)) if isinstance(v.action, dict) else 0.0
        if ds >= 0 and (front is None or gap < front.gap):
            front = Neighbour(gap, float(v.speed), accel)
        elif ds < 0 and (rear is None or gap < rear.gap):
            rear = Neighbour(gap, float(v.speed), accel)
    return front, rear


def required_braking(gap: float, v_ego: float, front: Neighbour, *, exact: bool = True) -> float:
    """Constant deceleration [m/s^2] the ego needs to never close ``gap`` on ``front``.

    The front vehicle keeps braking at its current deceleration until it stops
    (or holds its speed if it is not braking). No gap left needs infinite braking, even
    behind a car pulling away: it may brake at any moment.

    Behind a braking car the gap is smallest either while both still move (the relative-motion
    bound ``a_front + dv^2 / (2 gap)``) or once both have stopped (the stop-distance bound).
    ``exact`` takes the first only when the closest approach under it comes before the front car
    stops; ``exact=False`` takes the larger of the two (the monitor's default), which asks
    a car slightly faster than a hard-braking one far ahead to brake at least as hard, whatever
    the gap: a false alarm of the emergency brake.

    :param gap: bumper-to-bumper distance [m]
    :param v_ego: the ego's speed [m/s]
    :param front: the vehicle ahead (its speed and acceleration)
    :param exact: the least sufficient deceleration (True) or the upper bound of both conditions
    """
    if gap <= 0:
        return math.inf
    a_front = max(-front.accel, 0.0)
    closing = v_ego - front.speed
    approach = a_front + closing**2 / (2 * gap) if closing > 0 else 0.0
    if a_front == 0:
        return approach
    front_stop = front.speed**2 / (2 * a_front)
    stop = v_ego**2 / (2 * (gap + front_stop))
    # Under the relative-motion deceleration the closest approach comes 2 gap / closing after now.
    if exact and (closing <= 0 or 2 * gap / closing > front.speed / a_front):
        return stop
    return max(approach, stop)


class ActionChecker:
    """The monitor's decision-time checks of a meta-action, on ground-truth kinematics.

    Usable on its own, e.g. by a rule-based driver that should never propose what the
    monitor would refuse.

    :param cfg: thresholds
    """

    def __init__(self, cfg: SafetyConfig) -> None:
        self.cfg = cfg
        # The ego is the rear car in front checks (it brakes at brake_min); a follower in a
        # target lane is ordinary traffic, which brakes at most brake_max.
        self.rss = RSSParams(cfg.response_time, cfg.accel_max, cfg.brake_min, cfg.brake_max)
        self.rss_follower = RSSParams(cfg.response_time, cfg.accel_max, cfg.brake_max, cfg.brake_max)

    @staticmethod
    def target_speed(ego: Any, action: int) -> float:
        """The target speed [m/s] ``action`` would set for ``ego`` (its speed if it has no target speeds)."""
        speeds = getattr(ego, "target_speeds", None)
        if speeds is None:
            return float(ego.speed)
        index = int(ego.speed_index) + (1 if action == FASTER else -1 if action == SLOWER else 0)
        return float(speeds[max(0, min(index, len(speeds) - 1))])

    def front_problem(self, ego: Any, lane: tuple, speed: float) -> str | None:
        front, _ = lane_neighbours(ego.road, ego, lane)
        if front is None:
            return None
        if front.gap < safe_longitudinal_distance(speed, front.speed, self.rss):
            return "rss_front"
        if time_to_collision(front.gap, speed, front.speed) < self.cfg.ttc_min:
            return "ttc_front"
        return None

    def rear_problem(self, ego: Any, lane: tuple) -> str | None:
        _, rear = lane_neighbours(ego.road, ego, lane)
        if rear is None:
            return None
        if rear.gap < safe_longitudinal_distance(rear.speed, ego.speed, self.rss_follower):
            return "rss_rear"
        if time_to_collision(rear.gap, rear.speed, ego.speed) < self.cfg.ttc_min:
            return "ttc_rear"
        if rear.speed > ego.speed and (rear.speed - ego.speed) ** 2 / (2 * rear.gap) > self.cfg.max_imposed_braking:
            return "imposed_braking"
        return None

    def check(self, ego: Any, action: int) -> str | None:
        """None if ``action`` is safe for ``ego`` now, else the reason it is not."""
        lane = getattr(ego, "target_lane_index", ego.lane_index)
        if action in (LANE_LEFT, LANE_RIGHT):
            origin, dest, lane_id = lane
            new_id = lane_id + (-1 if action == LANE_LEFT else 1)
            if not 0 <= new_id < len(ego.road.network.graph[origin][dest]):
                return "no_lane"
            new_lane = (origin, dest, new_id)
            speed = max(float(ego.speed), self.target_speed(ego, action))
            problem = self.front_problem(ego, new_lane, speed) or self.rear_problem(ego, new_lane)
            # highway-env steps from the target lane: a second change the same way during the first
            # crosses that lane on the way, so a car alongside there counts too.
            current = ego.lane_index[2]
            if problem is None and lane_id != current and abs(new_id - current) > abs(lane_id - current):
                problem = self.front_problem(ego, lane, speed) or self.rear_problem(ego, lane)
            return problem
        if action == SLOWER:
            return None  # slowing down is the mitigation; the emergency brake covers the rest
        speed = max(float(ego.speed), self.target_speed(ego, action))
        problem = self.front_problem(ego, lane, speed)
        if problem is None and action == FASTER and self.cfg.cut_in_ttc > 0:
            problem = self._cut_in_risk(ego, lane, speed)
        return problem

    def _cut_in_risk(self, ego: Any, lane: tuple, speed: float) -> str | None:
        """Do not speed up past a slower car in a side lane that is close enough to cut in."""
        origin, dest, lane_id = lane
        for side_id in (lane_id - 1, lane_id + 1):
            if not 0 <= side_id < len(ego.road.network.graph[origin][dest]):
                continue
            front, _ = lane_neighbours(ego.road, ego, (origin, dest, side_id))
            # Were it to cut in now, the time-to-collision would fall below cut_in_ttc.
            if front is not None and time_to_collision(front.gap, speed, front.speed) < self.cfg.cut_in_ttc:
                return "cut_in_risk"
        return None

    def choose_action(self, ego: Any, proposed: int) -> tuple[int, str | None]:
        """(action to execute, reason for overriding or None)."""
        reason = self.check(ego, proposed)
        if reason is None:
            return proposed, None
        # Keep the lane if that is safe; if even the slowest speed is unsafe here, swerve if a lane is safe.
        if proposed != IDLE and self.check(ego, IDLE) is None:
            return IDLE, reason
        lane = getattr(ego, "target_lane_index", ego.lane_index)
        if self.front_problem(ego, lane, self.target_speed(ego, SLOWER)) is not None:
            for evasive in (LANE_LEFT, LANE_RIGHT):
                if evasive != proposed and self.check(ego, evasive) is None:
                    return evasive, reason
        return SLOWER, reason


class SafetyMonitor(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace unsafe actions and brake in emergencies, from ground truth only.

    - observation, action spaces: unchanged.
    - action: an unsafe proposed meta-action is replaced by the safest alternative;
      between decisions the emergency brake may override the longitudinal control.
    - reward, termination: unchanged (the ``override`` reward term reads ``info``).
    - info: ``safety`` = ``overridden``, ``reason``, ``proposed_action``,
      ``executed_action``, ``min_ttc`` (over this step's simulation frames),
      ``emergency_braking`` (frames braked), ``lane_change_aborts``, ``shadow`` and the
      episode's ``interventions`` so far.

    With ``cfg.shadow`` nothing is changed: the proposed action runs, no reflex touches the ego,
    and ``info`` reports what the monitor would have done (then ``executed_action`` is the proposal
    and the counts are of frames where a reflex would have fired).

    :param env: a highway-env env with ``DiscreteMetaAction`` actions
    :param cfg: thresholds
    """

    def __init__(self, env: gym.Env, cfg: SafetyConfig) -> None:
        if not isinstance(cfg, SafetyConfig):
            raise TypeError(f"cfg must be a SafetyConfig, got {type(cfg).__name__}")
        base = env.unwrapped
        if not hasattr(base, "road"):
            raise TypeError("SafetyMonitor needs a highway-env environment")
        if type(base.action_type).__name__ != "DiscreteMetaAction":
            raise ValueError("SafetyMonitor needs DiscreteMetaAction actions")
        gym.utils.RecordConstructorArgs.__init__(self, cfg=cfg)
        super().__init__(env)
        self.cfg = cfg
        self.checker = ActionChecker(cfg)
        self.rss = self.checker.rss
        self.interventions = 0
        self._hooked: Any = None
        self._frame_ttc = math.inf
        self._aeb_frames = 0
        self._aborts = 0
        self._swerves = 0

    # ------------------------------------------------------------------ episode
    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.interventions = 0
        self._hook(self.env.unwrapped.road)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        base = self.env.unwrapped
        if base.road is not self._hooked:
            self._hook(base.road)
        proposed = int(action)
        executed, reason = self.choose_action(proposed)
        if self.cfg.shadow:
            executed = proposed
        self._frame_ttc, self._aeb_frames, self._aborts, self._swerves = math.inf, 0, 0, 0
        obs, reward, terminated, truncated, info = self.env.step(executed)
        swerve, abort, brake = REFLEX_REASONS
        if reason is None and self._swerves:
            reason = swerve
        if reason is None and self._aborts:
            reason = abort
        if reason is None and self._aeb_frames:
            reason = brake
        overridden = reason is not None
        self.interventions += int(overridden)
        info = dict(info)
        info["safety"] = {
            "overridden": overridden,
            "reason": reason or "",
            "proposed_action": proposed,
            "executed_action": executed,
            "min_ttc": self._frame_ttc,
            "emergency_braking": self._aeb_frames,
            "lane_change_aborts": self._aborts,
            "evasive_steers": self._swerves,
            "interventions": self.interventions,
            "shadow": self.cfg.shadow,
        }
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------ decision check
    def check(self, action: int) -> str | None:
        """None if ``action`` is safe now, else the reason it is not."""
        return self.checker.check(self.env.unwrapped.vehicle, action)

    def choose_action(self, proposed: int) -> tuple[int, str | None]:
        """(action to execute, reason for overriding or None)."""
        return self.checker.choose_action(self.env.unwrapped.vehicle, proposed)

    # ------------------------------------------------------------------ emergency brake
    def _hook(self, road: Any) -> None:
        """Run the reflexes at every simulation step, after every vehicle has chosen its control."""
        road.act = _ReflexHook(road, self)
        self._hooked = road

    def _reflexes(self, ego: Any) -> None:
        if ego.crashed or not isinstance(ego.action, dict):
            return
        self._abort_unsafe_lane_change(ego)
        need = self._emergency_brake(ego)
        if need > self.cfg.emergency_braking:
            self._evasive_steer(ego)

    def _evasive_steer(self, ego: Any) -> None:
        """Braking alone cannot avoid the car ahead: swerve into a side lane that is safe now."""
        if getattr(ego, "target_lane_index", ego.lane_index) != ego.lane_index:
            return
        for side in (LANE_LEFT, LANE_RIGHT):
            if self.check(side) is None:
                self._swerves += 1
                if self.cfg.shadow:
                    return
                origin, dest, lane_id = ego.lane_index
                ego.target_lane_index = (origin, dest, lane_id + (-1 if side == LANE_LEFT else 1))
                ego.action["steering"] = ego.steering_control(ego.target_lane_index)
                return

    def _abort_unsafe_lane_change(self, ego: Any) -> None:
        """Steer back to the original lane when the target lane fills up during the manoeuvre."""
        target = getattr(ego, "target_lane_index", None)
        if target is None or target == ego.lane_index:
            return
        front, rear = lane_neighbours(ego.road, ego, target)
        blocked = front is not None and self._braking_need(ego, front) > self.cfg.aeb_trigger
        # A slower car alongside and just behind is falling back: its gap opens, so only a
        # follower at least as fast as the ego can cut the manoeuvre off.
        cut_off = (
            rear is not None
            and rear.speed >= ego.speed
            and (
                rear.gap < self.cfg.standstill_gap
                or (rear.speed - ego.speed) ** 2 / (2 * rear.gap) > self.cfg.emergency_braking
            )
        )
        if blocked or cut_off:
            self._aborts += 1
            if not self.cfg.shadow:
                ego.target_lane_index = ego.lane_index
                ego.action["steering"] = ego.steering_control(ego.lane_index)

    def _braking_need(self, ego: Any, front: Neighbour) -> float:
        # Aim to stop closing in with a standstill margin, not at zero gap.
        gap = front.gap - self.cfg.standstill_gap
        return required_braking(gap, float(ego.speed), front, exact=self.cfg.exact_braking_need)

    def _emergency_brake(self, ego: Any) -> float:
        """Brake if needed; returns the deceleration [m/s^2] avoiding the car ahead would take."""
        lanes = {ego.lane_index, getattr(ego, "target_lane_index", ego.lane_index)}
        need, unsafe = 0.0, False
        for lane in lanes:
            front, _ = lane_neighbours(ego.road, ego, lane)
            if front is None:
                continue
            self._frame_ttc = min(self._frame_ttc, time_to_collision(front.gap, ego.speed, front.speed))
            need = max(need, self._braking_need(ego, front))
            unsafe |= front.gap < safe_longitudinal_distance(float(ego.speed), front.speed, self.rss)
        # RSS's proper response: an unsafe distance that is still closing gets braked away now.
        if (need > self.cfg.aeb_trigger or (unsafe and need > 0.1)) and ego.speed > 0:
            self._aeb_frames += 1
            if not self.cfg.shadow:
                dt = 1.0 / self.env.unwrapped.config["simulation_frequency"]
                # A margin over the bare need, capped by the brake and by coming to a stop (no reversing).
                braking = min(max(need * 1.2, need + 0.5), self.cfg.emergency_braking, ego.speed / dt)
                ego.action["acceleration"] = min(float(ego.action["acceleration"]), -braking)
        return need
