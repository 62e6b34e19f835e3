"""Safety monitor: formulas, every override reason on a constructed scene, faults and the scenario suite."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agents.policies import make_baseline
from agents.suite import is_avoidable, run_cell
from envs import EnvConfig, RewardConfig, make_env
from envs.config import FaultsConfig, SafetyConfig
from envs.faults import CameraFaults
from envs.safety import RSSParams, safe_longitudinal_distance, time_to_collision
from envs.safety_monitor import FASTER, IDLE, LANE_LEFT, LANE_RIGHT, SLOWER, Neighbour, SafetyMonitor, required_braking
from envs.scenarios import ScenarioParams, braking_avoidable, suite_cells
from envs.scene import boxed_in, crash_kind, placements
from tests.conftest import assert_not_blank, monitor_of, scene

KINEMATICS = EnvConfig(observation="kinematics")


# ---------------------------------------------------------------- formulas
def test_rss_distance_hand_computed() -> None:
    # 30*1 + 3.5/2 + (30 + 3.5)^2 / 8 - 30^2 / 16
    assert safe_longitudinal_distance(30, 30, RSSParams()) == pytest.approx(30 + 1.75 + 33.5**2 / 8 - 56.25)
    p = RSSParams(response_time=0.5, accel_max=2.0, brake_min=5.0, brake_max=10.0)
    assert safe_longitudinal_distance(20, 10, p) == pytest.approx(10 + 0.25 + 21**2 / 10 - 100 / 20)


def test_rss_distance_clamps_at_zero_when_front_is_much_faster() -> None:
    assert safe_longitudinal_distance(10, 40, RSSParams()) == 0.0


def test_time_to_collision() -> None:
    assert time_to_collision(20.0, 25.0, 20.0) == pytest.approx(4.0)
    assert time_to_collision(20.0, 20.0, 25.0) == math.inf
    assert time_to_collision(0.0, 20.0, 25.0) == 0.0


def test_required_braking() -> None:
    # Constant-speed front: relative speed 10 m/s over 25 m needs 2 m/s^2.
    assert required_braking(25.0, 30.0, Neighbour(25.0, 20.0, 0.0)) == pytest.approx(2.0)
    # A stopped car 50 m ahead at 20 m/s needs 4 m/s^2.
    assert required_braking(50.0, 20.0, Neighbour(50.0, 0.0, 0.0)) == pytest.approx(4.0)
    assert required_braking(0.0, 20.0, Neighbour(0.0, 20.0, 0.0)) == math.inf
    # No gap left: even a car pulling away may brake at any moment (a random driver crashed
    # in dense traffic when this asked for no braking).
    assert required_braking(-1.0, 20.0, Neighbour(1.0, 25.0, 0.0)) == math.inf


def _least_braking(gap: float, v_ego: float, front: Neighbour) -> float:
    """Brute force: bisect the constant deceleration whose simulated gap never goes negative."""

    def min_gap(decel: float, dt: float = 2e-3) -> float:
        x_ego, v, x_front, v_front, lowest = 0.0, v_ego, gap, front.speed, gap
        a_front = max(-front.accel, 0.0)
        while v > 0 or (v_front > 0 and a_front > 0 and x_front - x_ego < gap + 50):
            v_next, v_front_next = max(v - decel * dt, 0.0), max(v_front - a_front * dt, 0.0)
            x_ego += (v + v_next) / 2 * dt
            x_front += (v_front + v_front_next) / 2 * dt
            v, v_front = v_next, v_front_next
            lowest = min(lowest, x_front - x_ego)
            if v == 0:
                break
        return lowest

    low, high = 0.0, 40.0
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (low, mid) if min_gap(mid) >= 0 else (mid, high)
    return high


@pytest.mark.parametrize(
    ("gap", "v_ego", "front"),
    [
        (40.0, 26.0, Neighbour(40.0, 25.0, -3.5)),  # slightly faster than a hard-braking car far ahead
        (8.0, 26.0, Neighbour(8.0, 20.0, -1.0)),  # closing fast on a gently braking car
        (20.0, 22.0, Neighbour(20.0, 20.0, -4.0)),
        (30.0, 20.0, Neighbour(30.0, 24.0, -5.0)),  # behind a faster car braking hard
        (25.0, 30.0, Neighbour(25.0, 20.0, 0.0)),  # constant-speed front
    ],
)
def test_required_braking_is_least_sufficient(gap: float, v_ego: float, front: Neighbour) -> None:
    exact = required_braking(gap, v_ego, front)
    assert exact == pytest.approx(_least_braking(gap, v_ego, front), abs=0.02)
    assert exact <= required_braking(gap, v_ego, front, exact=False) + 1e-9


def test_exact_need_spares_a_false_alarm() -> None:
    # 1 m/s faster than a car braking at 3.5 m/s^2, 40 m ahead: the bound asks for the emergency
    # brake (above its 3 m/s^2 trigger), while 2.5 m/s^2 is enough to stop behind it.
    front = Neighbour(40.0, 25.0, -3.5)
    trigger = SafetyConfig().aeb_trigger
    assert required_braking(40.0, 26.0, front, exact=False) > trigger
    assert required_braking(40.0, 26.0, front) < trigger


def test_params_validation() -> None:
    with pytest.raises(ValueError, match="brake_min"):
        RSSParams(brake_min=0)
    with pytest.raises(ValueError, match="aeb_trigger"):
        SafetyConfig(aeb_trigger=9.0, emergency_braking=8.0)
    with pytest.raises(ValueError, match="brake_min"):
        SafetyConfig(brake_min=9.0, emergency_braking=8.0)
    with pytest.raises(ValueError, match="cut_in_ttc"):
        SafetyConfig(cut_in_ttc=-1.0)


# ---------------------------------------------------------------- constructed scenes
@pytest.mark.parametrize(
    ("ego_lane", "speed", "others", "action", "reason", "executed"),
    [
        (1, 25.0, [(1, 115.0, 20.0)], IDLE, "rss_front", SLOWER),  # 10 m gap, 5 m/s closing
        (0, 25.0, [], LANE_LEFT, "no_lane", IDLE),
        (1, 25.0, [(0, 85.0, 30.0)], LANE_LEFT, "rss_rear", IDLE),  # fast follower 10 m behind in the target lane
        (1, 25.0, [(2, 130.0, 15.0)], LANE_RIGHT, "rss_front", IDLE),  # slow car ahead in the target lane
    ],
)
def test_decision_overrides(ego_lane, speed, others, action, reason, executed) -> None:
    env, monitor = scene(ego_lane, speed, others)
    got_action, got_reason = monitor.choose_action(action)
    assert (got_reason, got_action) == (reason, executed)
    _, _, _, _, info = env.step(action)
    safety = info["safety"]
    assert safety["overridden"] and safety["reason"] == reason
    assert safety["proposed_action"] == action and safety["executed_action"] == executed


@pytest.mark.parametrize(
    ("others", "reason", "executed"),
    [
        ([(1, 99.0, 25.0)], "rss_rear", IDLE),  # a car alongside in the lane the first change heads for
        ([(1, 160.0, 25.0)], None, LANE_RIGHT),  # that lane clear: on to the next
    ],
)
def test_second_lane_change_checks_the_lane_it_crosses(others: list, reason: str | None, executed: int) -> None:
    # Seed 1,000,176 of the random-driver benchmark: an evasive steer toward the middle lane, then
    # LANE_RIGHT before the ego had left its lane, checked only the far lane and sideswiped a car.
    env, monitor = scene(0, 25.0, others)
    env.unwrapped.vehicle.target_lane_index = ("0", "1", 1)
    assert monitor.choose_action(LANE_RIGHT) == (executed, reason)


# With hard brakes assumed the RSS distances shrink, so the other checks show through.
HARD_BRAKES = {"brake_min": 20.0, "brake_max": 20.0, "emergency_braking": 20.0}


def test_cut_in_risk_reason_only_when_enabled() -> None:
    # A slow car 15 m ahead in the left lane: were it to cut in, TTC would be 15/5 = 3 s.
    _, monitor = scene(1, 25.0, [(0, 120.0, 20.0)], SafetyConfig(cut_in_ttc=4.0))
    assert monitor.choose_action(FASTER) == (IDLE, "cut_in_risk")
    _, monitor = scene(1, 25.0, [(0, 120.0, 20.0)], SafetyConfig(cut_in_ttc=0.0))
    assert monitor.choose_action(FASTER) == (FASTER, None)


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        ([], FASTER),  # empty road
        ([(1, 160.0, 29.0)], FASTER),  # plenty of room behind a fast car
        ([(1, 125.0, 20.0), (0, 125.0, 20.0), (2, 125.0, 20.0)], IDLE),  # walled in, closing, room for 1 s
        ([(1, 120.5, 20.0), (0, 120.5, 20.0), (2, 120.5, 20.0)], SLOWER),  # ... within RSS distance in 1 s
        ([(1, 125.0, 20.0), (2, 125.0, 20.0)], LANE_LEFT),  # the left lane is free
        ([(1, 125.0, 20.0), (2, 125.0, 20.0), (0, 95.0, 28.0)], IDLE),  # ... but a fast car comes up behind
    ],
)
def test_overtaking_driver(others, expected) -> None:
    from envs.drivers import OvertakingDriver

    env, _ = scene(1, 25.0, others)
    assert OvertakingDriver().act(env.unwrapped) == expected


def test_overtaking_driver_anticipates_the_rss_distance() -> None:
    from envs.drivers import DriverParams, OvertakingDriver

    walled_in = [(1, 120.5, 20.0), (0, 120.5, 20.0), (2, 120.5, 20.0)]  # 5 m/s closing, TTC 3.1 s
    env, monitor = scene(1, 25.0, walled_in)
    assert monitor.check(IDLE) is None, "the monitor would still let it hold its speed now"
    assert OvertakingDriver(DriverParams(rss_lookahead=0.0)).act(env.unwrapped) == IDLE
    assert OvertakingDriver(DriverParams(rss_lookahead=1.0)).act(env.unwrapped) == SLOWER


def test_overtaking_driver_leaves_a_lane_it_cannot_follow_at_its_speed_floor() -> None:
    from envs.drivers import DriverParams, OvertakingDriver

    # In the right lane at SLOWER's 20 m/s, 15 m behind a car at 18.5 m/s: caught up in 10 s whatever it does.
    # The middle lane's leader, 9 m ahead at 20 m/s, allows about as much distance over 5 s, so on reach
    # alone the lane change gains nothing; its leader can be followed, the right lane's cannot.
    env, _ = scene(2, 20.0, [(2, 120.0, 18.5), (1, 114.0, 20.0)])
    assert OvertakingDriver(DriverParams(floor_ttc=0.0)).act(env.unwrapped) != LANE_LEFT
    assert OvertakingDriver(DriverParams(floor_ttc=12.0)).act(env.unwrapped) == LANE_LEFT
    # A leader above the floor is no dead end, however close.
    env, _ = scene(2, 20.0, [(2, 120.0, 21.0), (1, 114.0, 20.0)])
    assert OvertakingDriver(DriverParams(floor_ttc=12.0)).act(env.unwrapped) != LANE_LEFT


def test_driver_params_validation() -> None:
    from envs.drivers import DriverParams

    with pytest.raises(ValueError, match="horizon"):
        DriverParams(horizon=0)
    with pytest.raises(ValueError, match="headway"):
        DriverParams(headway=-1)
    with pytest.raises(ValueError, match="rss_lookahead"):
        DriverParams(rss_lookahead=-0.5)
    with pytest.raises(ValueError, match="floor_ttc"):
        DriverParams(floor_ttc=-1)


def test_ttc_front_reason() -> None:
    # 20 m behind a car 5 m/s slower: RSS-safe with 20 m/s^2 brakes, but TTC 20/5 = 4 s < 5 s.
    _, monitor = scene(1, 25.0, [(1, 125.0, 20.0)], SafetyConfig(**HARD_BRAKES, ttc_min=5.0))
    assert monitor.choose_action(IDLE) == (SLOWER, "ttc_front")


def test_imposed_braking_reason() -> None:
    # A follower 31 m behind at 35 m/s: RSS-safe and TTC 3.1 s, but it would have to brake 1.6 m/s^2 > 1.
    cfg = SafetyConfig(**HARD_BRAKES, ttc_min=1.0, max_imposed_braking=1.0)
    _, monitor = scene(1, 25.0, [(0, 64.0, 35.0)], cfg)
    assert monitor.check(LANE_LEFT) == "imposed_braking"


def test_safe_action_passes_unchanged() -> None:
    env, monitor = scene(1, 25.0, [(1, 200.0, 25.0)])
    assert monitor.choose_action(FASTER) == (FASTER, None)
    _, _, _, _, info = env.step(FASTER)
    assert not info["safety"]["overridden"] and info["safety"]["reason"] == ""


def test_emergency_brake_goes_below_slower_floor() -> None:
    env, _ = scene(1, 25.0, [(1, 150.0, 0.0)])  # stopped car 45 m ahead
    speeds, reasons, aeb_terms = [], [], []
    for _ in range(6):
        _, _, terminated, _, info = env.step(SLOWER)
        speeds.append(info["speed"])
        reasons.append(info["safety"]["reason"])
        aeb_terms.append(info["reward_raw"]["emergency_brake"] == float(info["safety"]["emergency_braking"] > 0))
        assert not terminated, "the emergency brake must stop in time"
    assert min(speeds) < 5.0, "SLOWER alone stops at 20 m/s; the emergency brake goes to a stop"
    assert "emergency_brake" in reasons
    assert all(aeb_terms), "the emergency_brake reward term is 1 exactly on the steps the brake fired"


@pytest.mark.parametrize(
    ("action", "spares", "charged"),
    [
        (SLOWER, True, 0.0),  # the policy asked to brake; the monitor only braked harder
        (SLOWER, False, 1.0),
        (IDLE, True, 1.0),  # the policy left the braking to the monitor
    ],
)
def test_override_spares_slower(action: int, spares: bool, charged: float) -> None:
    reward = RewardConfig(override=-1.5, override_spares_slower=spares, normalize=False)
    env, _ = scene(1, 25.0, [(1, 150.0, 0.0)], reward=reward)  # stopped car 45 m ahead: the brake fires
    _, _, _, _, info = env.step(action)
    assert info["safety"]["overridden"], "the monitor's own record counts every override"
    assert info["reward_raw"]["override"] == charged, info["safety"]
    assert info["reward_terms"]["override"] == pytest.approx(-1.5 * charged)


def test_emergency_brake_reacts_within_one_simulation_step() -> None:
    env, monitor = scene(1, 25.0, [(1, 140.0, 0.0)])
    base = env.unwrapped
    accelerations = []
    original = base.road.step

    def record(dt: float) -> None:
        accelerations.append(base.vehicle.action["acceleration"])
        original(dt)

    base.road.step = record
    env.step(IDLE)
    assert accelerations[0] <= -SafetyConfig().aeb_trigger, "braking from the first simulation step"


def test_evasive_steer_when_braking_cannot_avoid() -> None:
    env, _ = scene(1, 30.0, [(1, 155.0, 0.0)])  # 50 m to a stopped car at 30 m/s: needs > 8 m/s^2
    _, _, terminated, _, info = env.step(FASTER)
    assert not terminated
    assert info["safety"]["executed_action"] in (LANE_LEFT, LANE_RIGHT) or info["safety"]["evasive_steers"]


SHADOW = SafetyConfig(shadow=True)


@pytest.mark.parametrize(
    ("ego_lane", "speed", "others", "action", "reason"),
    [
        (1, 25.0, [(1, 150.0, 0.0)], FASTER, "rss_front"),  # refused, then braked: nothing of it happens
        # The brake would fire below the floor; unbraked, the need soon outgrows it and a swerve would follow.
        (1, 25.0, [(1, 150.0, 0.0)], SLOWER, "evasive_steer"),
        (1, 25.0, [(0, 85.0, 30.0)], LANE_LEFT, "rss_rear"),  # fast follower in the target lane
    ],
)
def test_shadow_monitor_reports_and_charges_but_changes_nothing(ego_lane, speed, others, action, reason) -> None:
    reward = RewardConfig(override=-1.5, normalize=False)
    watched, _ = scene(ego_lane, speed, others, cfg=SHADOW, reward=reward)
    bare, _ = scene(ego_lane, speed, others, cfg=SafetyConfig(enabled=False), reward=reward)
    _, _, _, _, info = watched.step(action)
    _, _, _, _, bare_info = bare.step(action)
    safety = info["safety"]
    assert safety["shadow"] and safety["overridden"] and safety["reason"] == reason
    assert safety["executed_action"] == action, "the proposal runs"
    assert info["reward_raw"]["override"] == 1.0, "charged as in a monitored env"
    ego, bare_ego = watched.unwrapped.vehicle, bare.unwrapped.vehicle
    assert ego.speed == pytest.approx(bare_ego.speed) and ego.lane_index == bare_ego.lane_index
    assert np.allclose(ego.position, bare_ego.position), "the ego moves exactly as without a monitor"


def test_shadow_monitor_lets_the_crash_happen() -> None:
    env, _ = scene(1, 25.0, [(1, 130.0, 0.0)], cfg=SHADOW)  # stopped car 25 m ahead
    crashed = False
    for _ in range(4):
        _, _, terminated, _, info = env.step(SLOWER)
        crashed |= info["crashed"]
        if terminated:
            break
    assert crashed and info["safety"]["emergency_braking"] > 0


def test_override_repeat_prices_an_ignored_warning() -> None:
    reward = RewardConfig(override=-1.5, override_repeat=-3.5, normalize=False)
    env, _ = scene(1, 25.0, [(1, 150.0, 0.0)], cfg=SHADOW, reward=reward)  # stopped car 45 m ahead
    infos = [env.step(FASTER)[4] for _ in range(2)]  # warned twice, FASTER both times
    assert [i["reward_raw"]["override"] for i in infos] == [1.0, 1.0]
    assert [i["reward_raw"]["override_repeat"] for i in infos] == [0.0, 1.0], "the first warning costs the override"
    assert infos[1]["reward_terms"]["override_repeat"] == pytest.approx(-3.5)


def test_override_repeat_is_an_override_after_an_override_within_an_episode() -> None:
    env = make_env(KINEMATICS, RewardConfig(override=-1.0, override_repeat=-1.0), safety=SafetyConfig())
    env.action_space.seed(3)
    repeats = firsts = 0
    for episode in range(3):
        env.reset(seed=40 + episode)
        before, done = False, False
        while not done:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            now, repeat = info["reward_raw"]["override"], info["reward_raw"]["override_repeat"]
            assert repeat == float(now > 0 and before), "a new episode starts without a warning"
            repeats, firsts = repeats + int(repeat > 0), firsts + int(now > 0 and not before)
            before, done = now > 0, terminated or truncated
    assert repeats and firsts, "the random policy both repeats overrides and starts new runs of them"


def test_shadow_monitor_counts_an_abort_it_does_not_make() -> None:
    env, monitor = scene(1, 25.0, [(0, 112.0, 15.0)], cfg=SHADOW)
    ego = env.unwrapped.vehicle
    ego.target_lane_index = ("0", "1", 0)
    monitor._aborts = 0
    monitor._abort_unsafe_lane_change(ego)
    assert monitor._aborts == 1 and ego.target_lane_index == ("0", "1", 0)


@pytest.mark.parametrize(
    ("other", "aborted"),
    [
        ((0, 112.0, 15.0), True),  # 7 m ahead in the target lane, 10 m/s slower
        ((0, 106.0, 32.0), True),  # 1 m ahead: even pulling away, it may brake at any moment
        ((0, 94.5, 20.0), False),  # alongside, 0.5 m behind and falling back: the gap opens
        ((0, 94.5, 30.0), True),  # alongside, 0.5 m behind and faster: cut off
        ((0, 88.0, 40.0), True),  # 7 m behind, 15 m/s faster: it would have to brake 16 m/s^2
        ((0, 60.0, 30.0), False),  # 35 m behind, 5 m/s faster
    ],
)
def test_lane_change_abort(other: tuple[int, float, float], aborted: bool) -> None:
    env, monitor = scene(1, 25.0, [other])
    ego = env.unwrapped.vehicle
    ego.target_lane_index = ("0", "1", 0)  # as if a lane change had just been accepted
    monitor._aborts = 0
    monitor._abort_unsafe_lane_change(ego)
    assert (ego.target_lane_index == ego.lane_index) is aborted
    assert monitor._aborts == int(aborted)


@pytest.mark.parametrize(
    ("ego_lane", "others", "action", "refused"),
    [
        (1, [(0, 85.0, 30.0)], LANE_LEFT, 1.0),  # fast follower 10 m behind in the target lane: rss_rear
        (1, [(2, 130.0, 15.0)], LANE_RIGHT, 1.0),  # slow car ahead in the target lane: rss_front
        (0, [], LANE_LEFT, 0.0),  # no lane there: a no-op, not a refusal that costs
        (1, [], LANE_LEFT, 0.0),  # an empty lane: accepted
        (1, [(1, 130.0, 15.0)], FASTER, 0.0),  # a refused FASTER is not a lane change
    ],
)
def test_lane_change_refused_term(ego_lane: int, others: list, action: int, refused: float) -> None:
    env, _ = scene(ego_lane, 25.0, others)
    _, _, _, _, info = env.step(action)
    assert info["reward_raw"]["lane_change_refused"] == refused, info["safety"]


@pytest.mark.parametrize(
    ("term", "ego_speed", "others", "action", "expected"),
    [
        ("floor_trap", 20.0, [(1, 140.0, 15.0)], SLOWER, 1.0),  # held at 20 m/s, closing at 5 m/s on a car 35 m ahead
        ("floor_trap", 20.0, [(1, 200.0, 15.0)], SLOWER, 0.0),  # the same car 95 m ahead: TTC ~19 s, time to act
        ("floor_trap", 20.0, [(1, 140.0, 22.0)], SLOWER, 0.0),  # a faster car ahead: the gap opens
        ("floor_trap", 25.0, [(1, 150.0, 22.0)], IDLE, 0.0),  # above the floor: SLOWER can still brake
        ("floor_trap", 20.0, [(1, 140.0, 15.0)], LANE_LEFT, 0.0),  # heading for an empty lane: the escape
        # slow_leader: the same closing, priced from above the floor, before the trap closes
        ("slow_leader", 25.0, [(1, 140.0, 15.0)], IDLE, 1.0),  # 25 m ahead after the step: 5 s at the floor
        ("slow_leader", 25.0, [(1, 200.0, 15.0)], IDLE, 0.0),  # 85 m ahead: 17 s at the floor, time to act
        ("slow_leader", 25.0, [(1, 140.0, 19.8)], IDLE, 0.0),  # a queue just under the floor: 150 s, no trap
        ("slow_leader", 25.0, [(1, 140.0, 22.0)], IDLE, 0.0),  # faster than the floor: SLOWER can follow it
        ("slow_leader", 25.0, [(0, 140.0, 15.0)], IDLE, 0.0),  # slow, but in the next lane
        ("slow_leader", 25.0, [(1, 140.0, 15.0)], LANE_LEFT, 0.0),  # heading for the empty lane: the way out
        ("slow_leader", 25.0, [(1, 140.0, 15.0), (0, 150.0, 15.0)], LANE_LEFT, 1.0),  # ... unless it is slow too
    ],
)
def test_trap_indicator_terms(term: str, ego_speed: float, others: list, action: int, expected: float) -> None:
    env, _ = scene(1, ego_speed, others, SafetyConfig(enabled=False))
    _, _, terminated, _, info = env.step(action)
    assert not terminated
    assert info["reward_raw"][term] == expected


def test_floor_trap_weight_and_horizon() -> None:
    reward = RewardConfig(floor_trap=-2.0, floor_trap_ttc=3.0, normalize=False)
    env, _ = scene(1, 20.0, [(1, 140.0, 15.0)], SafetyConfig(enabled=False), reward)
    _, _, _, _, info = env.step(SLOWER)  # TTC ~6 s: beyond the 3 s horizon
    assert info["reward_raw"]["floor_trap"] == 0.0
    for _ in range(6):  # closing at 5 m/s: the TTC falls below 3 s within five more steps
        _, _, _, _, info = env.step(SLOWER)
        if info["reward_raw"]["floor_trap"]:
            break
    assert info["reward_terms"]["floor_trap"] == -2.0
    with pytest.raises(ValueError, match="floor_trap_ttc"):
        RewardConfig(floor_trap_ttc=0.0)


def test_slow_leader_weight_and_horizon() -> None:
    reward = RewardConfig(slow_leader=-0.5, slow_leader_ttc=3.0, normalize=False)
    env, _ = scene(1, 25.0, [(1, 140.0, 15.0)], SafetyConfig(enabled=False), reward)
    _, _, _, _, info = env.step(SLOWER)  # more than 25 m ahead, 5 m/s slower than the floor: beyond 3 s
    assert info["reward_raw"]["slow_leader"] == 0.0
    for _ in range(5):  # held at the floor, the ego closes in at 5 m/s
        _, _, terminated, _, info = env.step(SLOWER)
        assert not terminated
        if info["reward_raw"]["slow_leader"]:
            break
    assert info["reward_terms"]["slow_leader"] == -0.5
    with pytest.raises(ValueError, match="slow_leader_ttc"):
        RewardConfig(slow_leader_ttc=0.0)


@pytest.mark.parametrize(
    ("ego_lane", "others", "expected"),
    [
        (1, [(0, 150.0, 20.0), (1, 150.0, 20.0), (2, 150.0, 20.0)], True),  # a car 45 m ahead in every lane
        (1, [(0, 150.0, 20.0), (1, 150.0, 20.0)], False),  # the right lane is open
        (1, [(0, 150.0, 20.0), (1, 150.0, 20.0), (2, 170.0, 20.0)], False),  # 65 m to the right lane's car
        (0, [(0, 130.0, 20.0), (1, 140.0, 20.0), (2, 105.0, 20.0)], True),  # two lanes away does not count
        (1, [(1, 80.0, 20.0), (0, 150.0, 20.0), (2, 150.0, 20.0)], False),  # cars behind do not box it in
    ],
)
def test_boxed_in(ego_lane: int, others: list, expected: bool) -> None:
    env, _ = scene(ego_lane, 25.0, others)
    assert boxed_in(env.unwrapped) is expected


@pytest.mark.parametrize(
    ("others", "reach", "expected"),
    [
        ([(0, 140.0, 25.0), (1, 140.0, 25.0), (2, 140.0, 25.0)], 60.0, -0.3),  # ~35 m ahead in every lane
        ([(0, 140.0, 25.0), (1, 140.0, 25.0)], 60.0, 0.0),  # the right lane is open: a way out of the pack
        ([(0, 140.0, 25.0), (1, 140.0, 25.0), (2, 140.0, 25.0)], 30.0, 0.0),  # beyond a 30 m reach
    ],
)
def test_boxed_in_term(others: list, reach: float, expected: float) -> None:
    reward = RewardConfig(boxed_in=-0.3, boxed_in_reach=reach, normalize=False)
    env, _ = scene(1, 25.0, others, SafetyConfig(enabled=False), reward)
    _, _, terminated, _, info = env.step(IDLE)
    assert not terminated
    assert info["reward_terms"]["boxed_in"] == pytest.approx(expected)
    assert info["reward_raw"]["boxed_in"] == float(expected != 0.0)


def test_boxed_in_reach_must_be_positive() -> None:
    with pytest.raises(ValueError, match="boxed_in_reach"):
        RewardConfig(boxed_in_reach=0.0)


@pytest.mark.parametrize(
    ("ego_speed", "other", "action", "expected"),
    [
        (30.0, (1, 130.0, 0.0), IDLE, "front"),  # a stopped car 25 m ahead
        (20.0, (1, 120.0, 15.0), SLOWER, "front_at_floor"),  # at 20 m/s, SLOWER's floor, behind a 15 m/s car
        (25.0, (1, 120.0, 15.0), IDLE, "front"),  # the same car, met at 25 m/s: SLOWER could have braked
        (20.0, (1, 75.0, 35.0), SLOWER, "rear"),  # a car closing from behind at 15 m/s
        (25.0, (0, 101.0, 25.0), LANE_LEFT, "ego_lane_change"),  # a car alongside in the left lane
        (25.0, (0, 110.0, 15.0, "cut_in"), IDLE, "cut_in"),  # a slower car moves in 5 m ahead of the ego
    ],
    ids=lambda case: case if isinstance(case, str) else None,
)
def test_crash_kind(ego_speed: float, other: tuple, action: int, expected: str) -> None:
    from envs.scenarios import ScriptedVehicle

    env, _ = scene(1, ego_speed, [], SafetyConfig(enabled=False))
    base = env.unwrapped
    lane_id, x, speed, *cut_in = other
    car = ScriptedVehicle(base.road, base.road.network.get_lane(("0", "1", lane_id)).position(x, 0), speed)
    if cut_in:
        car.change_at, car.change_to = 0.0, ("0", "1", 1)
    base.road.vehicles.append(car)
    assert crash_kind(base, placements(base)) == "other", "nothing has crashed yet"
    for _ in range(8):
        before = placements(base)
        *_, terminated, _, info = env.step(action)
        if terminated:
            break
    assert info["crashed"], "the scene must end in a crash"
    assert crash_kind(base, before) == expected


# ---------------------------------------------------------------- wrapper contract
def test_spaces_unchanged_and_check_env() -> None:
    plain = make_env(EnvConfig(), RewardConfig())
    monitored = make_env(EnvConfig(), RewardConfig(), safety=SafetyConfig())
    assert monitored.observation_space == plain.observation_space
    assert monitored.action_space == plain.action_space
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(monitor_of(monitored), skip_render_check=True)
    obs, _ = monitored.reset(seed=0)
    assert_not_blank(obs)


def test_monitor_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="SafetyConfig"):
        SafetyMonitor(gym.make("highway-fast-v0"), {"ttc_min": 3})
    with pytest.raises(ValueError, match="DiscreteMetaAction"):
        SafetyMonitor(gym.make("highway-fast-v0", config={"action": {"type": "ContinuousAction"}}), SafetyConfig())


def test_deepcopy_replays_the_same_future() -> None:
    """A planner's deep copy must simulate the real future and leave the original untouched."""
    import copy

    from envs.drivers import OvertakingDriver

    def drive(env: gym.Env, steps: int) -> list[tuple[float, float, bool]]:
        trace = []
        for _ in range(steps):
            _, _, terminated, truncated, info = env.step(teacher.act(env.unwrapped))
            trace.append((round(float(info["speed"]), 6), info["safety"]["interventions"], info["crashed"]))
            if terminated or truncated:
                break
        return trace

    teacher = OvertakingDriver()
    env = make_env(KINEMATICS, RewardConfig(), safety=SafetyConfig())
    env.reset(seed=5000)
    drive(env, 3)
    twin = copy.deepcopy(env)
    ahead = drive(twin, 12)
    assert drive(env, 12) == ahead
    assert len({speed for speed, _, _ in ahead}) > 1  # the scene moved: traffic, not a constant cruise


def test_safety_off_installs_nothing() -> None:
    env = make_env(KINEMATICS, RewardConfig(), safety=SafetyConfig(enabled=False))
    env.reset(seed=0)
    _, _, _, _, info = env.step(FASTER)
    assert "safety" not in info


def test_random_driver_is_kept_safe() -> None:
    from agents.evaluation import run_episode, summarize
    from agents.policies import RandomPolicy

    env = make_env(EnvConfig(observation="kinematics", vehicles_density=1.5), RewardConfig(), safety=SafetyConfig())
    results = [run_episode(env, RandomPolicy(5), 2_000_000 + i) for i in range(5)]
    assert not any(r.crashed for r in results)
    assert all(r.interventions > 0 for r in results)
    assert all(sum(r.intervention_reasons.values()) == r.interventions for r in results)
    totals = summarize(results)["interventions_by_reason"]
    assert sum(totals.values()) == sum(r.interventions for r in results)
    decision = {"no_lane", "rss_front", "ttc_front", "rss_rear", "ttc_rear", "imposed_braking", "cut_in_risk"}
    assert set(totals) <= decision | {"emergency_brake", "lane_change_aborted", "evasive_steer"}
    assert list(totals.values()) == sorted(totals.values(), reverse=True)


# ---------------------------------------------------------------- faults
def test_faults_touch_only_camera_frames() -> None:
    clean = make_env(EnvConfig(), RewardConfig(), safety=SafetyConfig())
    faulty = make_env(EnvConfig(), RewardConfig(), safety=SafetyConfig(), faults=FaultsConfig(dropout=1.0))
    obs_c, _ = clean.reset(seed=5)
    obs_f, _ = faulty.reset(seed=5)
    for action in [3, 0, 1, 4, 2, 3]:
        obs_c, r_c, t_c, _, info_c = clean.step(action)
        obs_f, r_f, t_f, _, info_f = faulty.step(action)
        assert not obs_f[-1].any(), "dropout 1.0 blanks every new frame"
        assert_not_blank(obs_c)
        assert info_c["safety"] == info_f["safety"], "the monitor's channel is untouched"
        assert (r_c, t_c, info_c["speed"]) == (r_f, t_f, info_f["speed"])
        if t_c:
            break


@pytest.mark.parametrize("cfg", [FaultsConfig(noise_std=20.0), FaultsConfig(freeze=1.0)], ids=["noise", "freeze"])
def test_noise_and_freeze(cfg: FaultsConfig) -> None:
    base = make_env(EnvConfig(), RewardConfig())
    env = CameraFaults(base, cfg)
    obs, _ = env.reset(seed=1)
    first = obs[-1].copy()
    obs, *_ = env.step(3)
    if cfg.freeze:
        assert np.array_equal(obs[-1], first)
    else:
        assert not np.array_equal(obs[-1], first)
        assert env.observation_space.contains(obs)


def test_faults_need_camera_frames() -> None:
    with pytest.raises(ValueError, match="camera"):
        make_env(KINEMATICS, RewardConfig(), faults=FaultsConfig(dropout=0.3))


# ---------------------------------------------------------------- scenario suite
def test_cells_reproduce_by_seed() -> None:
    cell = ScenarioParams("cut_in", 25.0, 10.0, 20.0, 0.0, "free")
    rows = [
        run_cell(cell, make_baseline("random"), 1_000_003, KINEMATICS, RewardConfig(), SafetyConfig()) for _ in "ab"
    ]
    assert rows[0] == rows[1]


@pytest.mark.parametrize(
    ("cell", "avoidable"),
    [
        # 25 m/s: 5 m reaction + 625/16 = 44 m of braking < 50 m
        (ScenarioParams("stationary", 25.0, 50.0, 0.0, 0.0, "blocked"), True),
        # 30 m/s: 6 m + 900/16 = 62 m > 60 m, and both side lanes blocked
        (ScenarioParams("stationary", 30.0, 60.0, 0.0, 0.0, "blocked"), False),
        (ScenarioParams("stationary", 30.0, 60.0, 0.0, 0.0, "free"), True),  # a free lane
        # cut-in 5 m ahead closing at 5 m/s: 0.7 s * 5 + 25/16 > 5 m
        (ScenarioParams("cut_in", 25.0, 5.0, 20.0, 0.0, "blocked"), False),
        (ScenarioParams("braking_lead", 25.0, 12.0, 25.0, 6.0, "blocked"), True),
    ],
)
def test_avoidable_flag_matches_hand_checks(cell: ScenarioParams, avoidable: bool) -> None:
    assert is_avoidable(cell, 0.2, 8.0) == avoidable


def test_braking_avoidability_is_monotonic_in_gap() -> None:
    flags = [braking_avoidable(ScenarioParams("stationary", 30.0, g, 0.0, 0.0, "blocked"), 0.2, 8.0) for g in (55, 65)]
    assert flags == [False, True]


@pytest.mark.parametrize("kind", ["stationary", "cut_in"])
def test_scenario_ids_registered_and_checked(kind: str) -> None:
    from envs import SCENARIO_IDS

    env = gym.make(SCENARIO_IDS[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)


def test_suite_has_every_scenario() -> None:
    kinds = {c.kind for c in suite_cells()}
    assert kinds == {"stationary", "slower_lead", "braking_lead", "cut_in", "stalled"}
