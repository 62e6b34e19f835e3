"""Figures: learning curves from a run's TensorBoard logs, and crash rate vs speed across evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from envs.io import atomic_write

CURVES = {
    "rollout/ep_rew_mean": "episode return",
    "rollout/crash_rate": "crash rate",
    "rollout/mean_speed": "mean speed [m/s]",
    "rollout/intervention_rate": "monitor overrides (share of steps)",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_scalars(tb_dir: str | Path, tags: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(steps, values) of each tag found in the TensorBoard event files under ``tb_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, dict[int, float]] = {}
    for events in sorted(Path(tb_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in set(tags) & set(acc.Tags().get("scalars", [])):
            for event in acc.Scalars(tag):
                series.setdefault(tag, {})[event.step] = event.value
    return {
        tag: (np.array(sorted(points)), np.array([points[s] for s in sorted(points)])) for tag, points in series.items()
    }


def plot_learning_curves(run_dirs: dict[str, Path], path: str | Path) -> Path:
    """Return, crash rate, speed and overrides vs env steps, one line per run (label -> run dir)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.2))
    for label, run_dir in run_dirs.items():
        scalars = read_scalars(Path(run_dir) / "tb", list(CURVES))
        for ax, tag in zip(axes, CURVES, strict=True):
            if tag in scalars:
                ax.plot(*scalars[tag], label=label)
    for ax, title in zip(axes, CURVES.values(), strict=True):
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    if len(run_dirs) > 1:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_crash_vs_speed(evaluations: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Scatter of crash rate (with its 95 % CI) against mean speed, one point per evaluation."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, m in evaluations.items():
        rate = 100 * m["collision_rate"]
        lo, hi = (100 * v for v in m.get("collision_rate_ci95", [m["collision_rate"]] * 2))
        yerr = [[max(rate - lo, 0.0)], [max(hi - rate, 0.0)]]  # rounding can put rate a hair outside
        ax.errorbar(m["mean_speed"], rate, yerr=yerr, fmt="o", capsize=3, label=label)
    ax.set_xlabel("mean speed [m/s]")
    ax.set_ylabel("crash rate [%]  (95 % CI)")
    ax.set_title("safer is lower, faster is right")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # labels of close points would overlap
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    plt = _pyplot()
    try:
        return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    finally:
        plt.close(fig)


def markdown_table(evaluations: dict[str, dict[str, Any]]) -> str:
    """One row per evaluation: return, crash rate and speed with 95 % intervals."""
    lines = [
        "| policy | episodes | return (95% CI) | crash rate (95% CI) | mean speed [m/s] | interventions |",
        "|---|---|---|---|---|---|",
    ]
    for label, m in evaluations.items():
        rlo, rhi = m["mean_return_ci95"]
        clo, chi = m["collision_rate_ci95"]
        lines.append(
            f"| {label} | {m['episodes']} | {m['mean_return']:.2f} ({rlo:.2f}-{rhi:.2f}) "
            f"| {m['collision_rate']:.1%} ({clo:.1%}-{chi:.1%}) | {m['mean_speed']:.2f} "
            f"| {m['intervention_rate']:.1%} |"
        )
    return "\n".join(lines)
