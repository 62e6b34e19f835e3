"""The rule-based driver with a look at the bare future: it vetoes the rules where their action leads into a crash.

The rules (:class:`envs.drivers.OvertakingDriver`) judge the present: the gap and closing speed ahead,
the gaps in the side lanes. They walk, like our camera agents, into the floor trap: held at SLOWER's
20-m/s floor behind a car that slows below 20 m/s, with the next lane blocked by a car alongside, so
that without the monitor's emergency brake the only way out is a lane change that closes seconds before
the crash. A lookahead planner that tries every action ten decisions ahead avoids them, at ~1 s a decision.

:class:`GuardedDriver` pays for one rollout per decision instead of five: it replays the rules' own
action, then the rules, ``horizon`` decisions ahead on a copy of the simulator without the monitor
(:func:`envs.bare_replay.bare_copy`, sharing the env's random state, so the other cars do what they will
do). Only when that replay crashes does it try the other actions, and it takes the one whose replay does
not crash, preferring actions the monitor's decision check accepts, then the most speed covered. It reads
every car's future: a teacher and a reference, not a deployable driver.

What it cannot do (measured, README): undo a trap that the rules' way through the pack leads into long
before the crash. One departure from the rules, the rules then driving on, does not open those, even
20 decisions ahead; only a driver that plans at every decision stays out of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from envs.bare_replay import ReplayOutcome, bare_copy, replay_outcome
from envs.drivers import OvertakingDriver
from envs.planner import ACTIONS


@dataclass(frozen=True)
class GuardParams:
    """How far the :class:`GuardedDriver` looks ahead, and at which cars."""

    horizon: int = 10
    """Decisions replayed from each candidate action, the first included [s at 1 decision per second]."""
    reach: float | None = 150.0
    """The replay copies only the vehicles within this many metres [m] of the ego (None: all)."""

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon: must be >= 1, got {self.horizon}")
        if self.reach is not None and self.reach <= 0:
            raise ValueError(f"reach: must be > 0 or None, got {self.reach}")


class GuardedDriver:
    """The rules' action, unless its bare replay crashes (see the module docstring).

    Cost: one bare replay of up to ``horizon`` decisions per decision (~0.04 s at horizon 10 within
    150 m on highway-fast-v0), four more where the rules' action is vetoed.

    :param driver: the rule-based driver proposing the action and driving every replay after its first decision
    :param params: the replay's horizon and reach
    """

    def __init__(self, driver: OvertakingDriver | None = None, params: GuardParams | None = None) -> None:
        if driver is not None and not isinstance(driver, OvertakingDriver):
            raise TypeError(f"driver must be an OvertakingDriver, got {type(driver).__name__}")
        if params is not None and not isinstance(params, GuardParams):
            raise TypeError(f"params must be GuardParams, got {type(params).__name__}")
        self.driver = driver or OvertakingDriver()
        self.params = params or GuardParams()
        self.vetoes = 0
        """Decisions on which the rules' own action was replaced (for diagnostics)."""

    def outcome(self, env: gym.Env, action: int) -> ReplayOutcome:
        """What ``action``, then the rules, does ``horizon`` decisions ahead of ``env`` without the monitor."""
        twin = bare_copy(env, self.params.reach)
        return replay_outcome(twin, action, self.params.horizon, self.driver.act)

    def act(self, env: gym.Env) -> int:
        """The meta-action for ``env`` (a wrapper stack or the bare highway-env env; only the simulator is read)."""
        base = env.unwrapped
        own = self.driver.act(base)
        outcomes = {own: self.outcome(env, own)}
        if not outcomes[own].crashed:
            return own
        self.vetoes += 1
        outcomes.update({action: self.outcome(env, action) for action in ACTIONS if action != own})
        ego = base.vehicle

        def rank(action: int) -> tuple[bool, bool, int, float, bool]:
            # no crash first, then what the monitor would accept, then speed; if all crash, the latest crash
            result = outcomes[action]
            accepted = self.driver.checker.check(ego, action) is None
            return (not result.crashed, accepted, result.decisions, result.speed_sum, action == own)

        return max(outcomes, key=rank)
