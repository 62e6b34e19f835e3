"""Does pretraining the CNN on scene classification help PPO? Frozen vs fine-tuned vs from scratch.

    python scripts/perception_experiment.py [--steps 20000] [--seeds 3] [--jobs 1]
        [--checkpoint runs/perception/default/model.pt] [--out runs/perception_experiment] [key=value ...]

Every variant gets the same budget and the same seeds. Finished runs are reused, so
the script can be stopped and restarted. Writes OUT/results.md (a table of final
return, crash rate and mean speed, mean +- std over seeds), OUT/results.json and
OUT/learning_curves.png (mean over seeds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "frozen": ["perception=pretrained", "perception.freeze=true"],
    "finetuned": ["perception=pretrained", "perception.freeze=false"],
    "scratch": ["perception=scratch"],
}


def train_one(name: str, args: list[str], out: Path) -> Path:
    run = out / name
    if (run / "summary.json").is_file():
        return run
    cmd = [sys.executable, str(ROOT / "scripts" / "train_agent.py"), *args, f"run.dir={out}", f"run.name={name}"]
    if run.exists():
        cmd.append("resume=true")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}")
    return run


def mean_curve(runs: list[Path], tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    from agents.plots import read_scalars

    series = [read_scalars(r / "tb", [tag]).get(tag) for r in runs]
    series = [s for s in series if s is not None and len(s[0])]
    if not series:
        return None
    grid = np.linspace(max(s[0][0] for s in series), min(s[0][-1] for s in series), 50)
    return grid, np.mean([np.interp(grid, *s) for s in series], axis=0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (each uses agent.n_envs processes)")
    parser.add_argument("--checkpoint", default="runs/perception/default/model.pt")
    parser.add_argument("--out", type=Path, default=Path("runs/perception_experiment"))
    parser.add_argument("--eval-episodes", type=int, default=30)
    args, overrides = parser.parse_known_args(argv)
    if not Path(args.checkpoint).is_file():
        print(f"error: --checkpoint: {args.checkpoint} not found (run scripts/train_perception.py)", file=sys.stderr)
        return 2
    # No imitation warm start: the variants must differ only in where PPO's CNN starts.
    common = [
        "imitation=none", f"agent.total_timesteps={args.steps}", f"perception.checkpoint={args.checkpoint}",
        f"eval.episodes={args.eval_episodes}", "run.progress_bar=false", *overrides,
    ]  # fmt: skip
    jobs = {
        f"{variant}_s{seed}": [*common, *extra, f"run.seed={seed * 1000}"]
        for variant, extra in VARIANTS.items()
        for seed in range(args.seeds)
    }
    for name in jobs:  # from scratch means no checkpoint at all
        if name.startswith("scratch"):
            jobs[name] = [a for a in jobs[name] if not a.startswith("perception.checkpoint=")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = dict(zip(jobs, pool.map(lambda kv: train_one(kv[0], kv[1], args.out), jobs.items()), strict=True))

    results, lines = {}, ["| variant | seeds | return | crash rate | mean speed [m/s] |", "|---|---|---|---|---|"]
    for variant in VARIANTS:
        evals = [json.loads((runs[n] / "summary.json").read_text())["eval"] for n in runs if n.startswith(variant)]
        stats = {k: (float(np.mean([e[k] for e in evals])), float(np.std([e[k] for e in evals])))
                 for k in ("mean_return", "collision_rate", "mean_speed")}  # fmt: skip
        results[variant] = {"seeds": len(evals), **{k: {"mean": m, "std": s} for k, (m, s) in stats.items()}}
        r, c, v = stats["mean_return"], stats["collision_rate"], stats["mean_speed"]
        cells = [f"{r[0]:.2f} +- {r[1]:.2f}", f"{c[0]:.0%} +- {c[1]:.0%}", f"{v[0]:.2f} +- {v[1]:.2f}"]
        lines.append(f"| {variant} | {len(evals)} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.plots import CURVES
    from envs.io import atomic_write, write_json, write_text

    fig, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.2))
    for variant in VARIANTS:
        members = [runs[n] for n in runs if n.startswith(variant)]
        for ax, tag in zip(axes, CURVES, strict=True):
            curve = mean_curve(members, tag)
            if curve is not None:
                ax.plot(*curve, label=variant)
    for ax, title in zip(axes, CURVES.values(), strict=True):
        ax.set_title(f"{title} (mean of {args.seeds} seeds)", fontsize=9)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    atomic_write(args.out / "learning_curves.png", lambda p: fig.savefig(p, format="png", dpi=110))
    write_text(args.out / "results.md", table + "\n")
    write_json(args.out / "results.json", {"steps": args.steps, "variants": results})
    print(f"\n{args.out / 'results.md'}, {args.out / 'learning_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
