"""Emergency-avoidance scenarios modelled on Euro NCAP's car-to-car rear AEB tests.

Each scenario is a short, scripted scene on a 3-lane highway, the ego in the
middle lane. Parameters come from the env config key ``scenario``:

- ``stationary`` (CCRs-like): a stopped car ahead at an initial time-to-collision;
- ``slower_lead`` (CCRm-like): a lead car at constant lower speed;
- ``braking_lead`` (CCRb-like): a lead at the ego's speed that brakes hard at t = 1 s;
- ``cut_in``: a slower car from the left lane cuts in at a short gap at t = 0.5 s;
- ``stalled``: a stalled car far ahead that must be passed by changing lane.

``adjacent: blocked`` puts cars beside the ego in both side lanes at its speed.
:func:`braking_avoidable` tells from kinematics whether braking at the maximum
deceleration after one simulation step avoids the crash.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gymnasium.envs.registration import register, registry
from highway_env.envs.highway_env import HighwayEnv
from highway_env.vehicle.controller import ControlledVehicle
from highway_env.vehicle.kinematics import Vehicle

KINDS = ("stationary", "slower_lead", "braking_lead", "cut_in", "stalled")
EGO_LANE = 1
EGO_X = 100.0  # m, ego's start along the road
BRAKE_AT = 1.0  # s, braking_lead: when the lead brakes
CUT_IN_AT = 0.5  # s, cut_in: when the cutter starts its lane change


@dataclass(frozen=True)
class ScenarioParams:
    """One cell of the suite."""

    kind: str
    ego_speed: float = 25.0
    """Ego's initial speed [m/s]."""
    gap: float = 50.0
    """Initial bumper gap to the hazard car [m]."""
    lead_speed: float = 0.0
    """Hazard car's initial speed [m/s]."""
    lead_decel: float = 0.0
    """braking_lead: the lead's deceleration [m/s^2]."""
    adjacent: str = "free"
    """``free`` or ``blocked`` side lanes."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: unknown scenario {self.kind!r} (choose from {', '.join(KINDS)})")
        if self.adjacent not in ("free", "blocked"):
            raise ValueError(f"adjacent: must be 'free' or 'blocked', got {self.adjacent!r}")

    def label(self) -> str:
        fields = [f"v={self.ego_speed:g}", f"gap={self.gap:g}"]
        if self.kind in ("slower_lead", "cut_in"):
            fields.append(f"lead={self.lead_speed:g}")
        if self.kind == "braking_lead":
            fields.append(f"decel={self.lead_decel:g}")
        return " ".join([*fields, f"adjacent={self.adjacent}"])


class ScriptedVehicle(ControlledVehicle):
    """A car that follows a script, not a driver model: constant speed, optional braking or lane change.

    :param brake_at: time [s] at which it starts braking at ``decel`` until it stops
    :param change_at: time [s] at which it heads for ``change_to`` lane
    """

    def __init__(
        self,
        road: Any,
        position: Any,
        speed: float,
        brake_at: float | None = None,
        decel: float = 0.0,
        change_at: float | None = None,
        change_to: tuple | None = None,
    ) -> None:
        super().__init__(road, position, heading=0.0, speed=speed)
        self.brake_at, self.decel = brake_at, decel
        self.change_at, self.change_to = change_at, change_to
        self.clock = 0.0

    def act(self, action: Any = None) -> None:
        if self.change_at is not None and self.clock >= self.change_at:
            self.target_lane_index, self.change_at = self.change_to, None
        braking = self.brake_at is not None and self.clock >= self.brake_at and self.speed > 0
        accel = -self.decel if braking else 0.0
        Vehicle.act(self, {"steering": self.steering_control(self.target_lane_index), "acceleration": accel})

    def step(self, dt: float) -> None:
        if self.speed + self.action["acceleration"] * dt < 0:
            self.action["acceleration"] = -self.speed / dt  # stop, never reverse
        super().step(dt)
        self.clock += dt


class EmergencyScenarioEnv(HighwayEnv):
    """A scripted emergency on a 3-lane highway; see the module docstring."""

    @classmethod
    def default_config(cls) -> dict:
        config = super().default_config()
        config.update(
            {
                "lanes_count": 3,
                "vehicles_count": 0,
                "duration": 12,  # [s]
                "simulation_frequency": 5,  # [Hz], as highway-fast-v0, on which agents train
                "policy_frequency": 1,  # [Hz]
                "scenario": {"kind": "stationary"},
            }
        )
        return config

    def _create_vehicles(self) -> None:
        p = ScenarioParams(**self.config["scenario"])
        lane = self.road.network.get_lane(("0", "1", EGO_LANE))
        ego = self.action_type.vehicle_class(self.road, lane.position(EGO_X, 0), 0.0, p.ego_speed)
        self.controlled_vehicles = [ego]
        self.road.vehicles.append(ego)
        length = Vehicle.LENGTH
        if p.kind == "cut_in":
            side = self.road.network.get_lane(("0", "1", 0))
            hazard = ScriptedVehicle(
                self.road, side.position(EGO_X + length + p.gap, 0), p.lead_speed,
                change_at=CUT_IN_AT, change_to=("0", "1", EGO_LANE),
            )  # fmt: skip
        else:
            brake_at = BRAKE_AT if p.kind == "braking_lead" else None
            hazard = ScriptedVehicle(
                self.road, lane.position(EGO_X + length + p.gap, 0), p.lead_speed, brake_at, p.lead_decel
            )
        self.road.vehicles.append(hazard)
        if p.adjacent == "blocked":
            for side_lane in (0, 2):
                if p.kind == "cut_in" and side_lane == 0:
                    continue  # the cutter's lane
                side = self.road.network.get_lane(("0", "1", side_lane))
                for dx in (-12.0, 0.0, 12.0):
                    self.road.vehicles.append(ScriptedVehicle(self.road, side.position(EGO_X + dx, 0), p.ego_speed))

    def _is_truncated(self) -> bool:
        return self.time >= self.config["duration"]


def hazard_motion(p: ScenarioParams, t: float) -> tuple[float, float]:
    """Hazard car's (distance travelled [m], speed [m/s]) at time t, per its script."""
    if p.kind != "braking_lead" or t <= BRAKE_AT:
        return p.lead_speed * t, p.lead_speed
    t_stop = p.lead_speed / p.lead_decel
    tb = min(t - BRAKE_AT, t_stop)
    return p.lead_speed * BRAKE_AT + p.lead_speed * tb - 0.5 * p.lead_decel * tb**2, p.lead_speed - p.lead_decel * tb


def braking_avoidable(p: ScenarioParams, dt: float, max_braking: float, horizon: float = 15.0) -> bool:
    """True if braking at ``max_braking`` from one simulation step (``dt``) after the hazard appears avoids it.

    The hazard appears at t = 0, or for a cut-in when the cutter starts its lane change.
    """
    react = dt + (CUT_IN_AT if p.kind == "cut_in" else 0.0)
    h = dt / 50
    t, x_ego, v_ego = 0.0, 0.0, p.ego_speed
    while t < horizon:
        x_lead, v_lead = hazard_motion(p, t)
        if p.gap + x_lead - x_ego <= 0:
            return False
        if v_ego <= 0 or (v_ego <= v_lead and (p.kind != "braking_lead" or v_lead <= 0)):
            return True
        if t >= react:
            v_ego = max(0.0, v_ego - max_braking * h)
        x_ego += v_ego * h
        t += h
    return True


def suite_cells() -> list[ScenarioParams]:
    """The emergency suite: every scenario over its parameter grid."""
    cells = []
    for speed in (20.0, 25.0, 30.0):
        for ttc in (4.0, 2.0):
            for adjacent in ("free", "blocked"):
                cells.append(ScenarioParams("stationary", speed, speed * ttc, 0.0, 0.0, adjacent))
    for speed in (25.0, 30.0):
        for adjacent in ("free", "blocked"):
            cells.append(ScenarioParams("slower_lead", speed, (speed - 12.0) * 3.0, 12.0, 0.0, adjacent))
    for gap in (12.0, 40.0):
        for decel in (2.0, 6.0):
            cells.append(ScenarioParams("braking_lead", 25.0, gap, 25.0, decel, "blocked"))
    for gap in (5.0, 10.0, 20.0):
        for adjacent in ("free", "blocked"):
            cells.append(ScenarioParams("cut_in", 25.0, gap, 20.0, 0.0, adjacent))
    for gap in (60.0, 100.0):
        cells.append(ScenarioParams("stalled", 25.0, gap, 0.0, 0.0, "free"))
    return cells


def scenario_config(p: ScenarioParams) -> dict[str, Any]:
    """The ``scenario`` entry of the env config for one cell."""
    return dataclasses.asdict(p)


SCENARIO_IDS = {kind: f"safedrive/Emergency-{kind.title().replace('_', '')}-v0" for kind in KINDS}


def register_scenarios() -> None:
    """One gymnasium id per scenario kind; parameters via ``config={"scenario": {...}}``."""
    for kind, env_id in SCENARIO_IDS.items():
        if env_id not in registry:
            register(
                id=env_id,
                entry_point="envs.scenarios:EmergencyScenarioEnv",
                kwargs={"config": {"scenario": {"kind": kind}}},
            )
