"""The emergency-avoidance suite runner: one episode per scenario cell, one row per cell."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from agents.evaluation import EVAL_SEED_BASE, run_episode
from envs import EnvConfig, RewardConfig, make_env
from envs.config import FaultsConfig, SafetyConfig
from envs.scenarios import SCENARIO_IDS, ScenarioParams, braking_avoidable, scenario_config, suite_cells

SUITES = ("emergency",)
DEFAULT_MAX_BRAKING = SafetyConfig().emergency_braking  # m/s^2, the physical limit of "avoidable"


def is_avoidable(cell: ScenarioParams, dt: float, max_braking: float) -> bool:
    """Braking at the maximum deceleration after one simulation step avoids it, or a side lane is free."""
    return cell.adjacent == "free" or braking_avoidable(cell, dt, max_braking)


def scenario_env_config(env_cfg: EnvConfig, cell: ScenarioParams) -> EnvConfig:
    """The agent's observation settings on the scenario's own scene."""
    scene_keys = ("lanes_count", "vehicles_count", "vehicles_density", "duration")
    cleared = {k: None for k in (*scene_keys, "policy_frequency", "simulation_frequency")}
    return dataclasses.replace(env_cfg, id=SCENARIO_IDS[cell.kind], **cleared)


def run_cell(
    cell: ScenarioParams,
    policy: Any,
    seed: int,
    env_cfg: EnvConfig,
    reward_cfg: RewardConfig,
    safety: SafetyConfig | None,
    faults: FaultsConfig | None = None,
) -> dict[str, Any]:
    """One episode of ``cell``; the row of scenarios.json."""
    env = make_env(
        scenario_env_config(env_cfg, cell), reward_cfg, safety=safety, faults=faults,
        extra_config={"scenario": scenario_config(cell)},
    )  # fmt: skip
    try:
        result = run_episode(env, policy, seed)
        base = env.unwrapped
        dt = 1.0 / base.config["simulation_frequency"]
        hazard = base.road.vehicles[1]
        passed = bool(base.vehicle.position[0] > hazard.position[0])
    finally:
        env.close()
    max_braking = safety.emergency_braking if safety is not None and safety.enabled else DEFAULT_MAX_BRAKING
    return {
        "scenario": cell.kind,
        "params": dataclasses.asdict(cell),
        "label": cell.label(),
        "seed": seed,
        "avoidable": is_avoidable(cell, dt, max_braking),
        "collided": result.crashed,
        "min_ttc": None if math.isinf(result.min_ttc) else round(result.min_ttc, 3),
        "interventions": result.interventions,
        "passed_hazard": passed,
        "mean_speed": round(result.mean_speed, 2),
    }


def run_suite(
    name: str,
    policy: Any,
    env_cfg: EnvConfig,
    reward_cfg: RewardConfig,
    safety: SafetyConfig | None,
    faults: FaultsConfig | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every cell of suite ``name`` (seeds ``EVAL_SEED_BASE + seed + i``)."""
    if name not in SUITES:
        raise ValueError(f"suite: unknown suite {name!r} (choose from: {', '.join(SUITES)})")
    return [
        run_cell(cell, policy, EVAL_SEED_BASE + seed + i, env_cfg, reward_cfg, safety, faults)
        for i, cell in enumerate(suite_cells())
    ]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table plus the headline: collisions on avoidable cells."""
    lines = [f"{'scenario':<13}{'params':<40}{'avoidable':<10}{'collided':<9}{'min TTC':>8}{'interv.':>8}"]
    for r in rows:
        ttc = "inf" if r["min_ttc"] is None else f"{r['min_ttc']:.2f}"
        lines.append(
            f"{r['scenario']:<13}{r['label']:<40}{'yes' if r['avoidable'] else 'no':<10}"
            f"{'CRASH' if r['collided'] else '-':<9}{ttc:>8}{r['interventions']:>8}"
        )
    avoidable = [r for r in rows if r["avoidable"]]
    crashed = sum(r["collided"] for r in avoidable)
    lines.append(f"collisions on avoidable cells: {crashed}/{len(avoidable)}; on all cells: "
                 f"{sum(r['collided'] for r in rows)}/{len(rows)}")  # fmt: skip
    return "\n".join(lines)
