"""Re-run the whole pipeline end to end: dataset, perception, agent, evaluations, table.

    python scripts/reproduce_results.py [--name pipeline] [--episodes 100] [--out results]
                                        [--generalization-episodes 50]

Steps (each skipped when its output already exists, so the script can be restarted):
  1. scripts/train_perception.py              -> runs/perception/default/model.pt
  2. scripts/train_agent.py run.name=NAME     -> runs/NAME/ (the default config)
  3. scripts/evaluate.py on highway-fast-v0 with and without the monitor, with camera dropout,
     and every baseline (without the monitor)
  4. generalization: the agent with the monitor on env=highway and env=merge (50 episodes each)
  5. scripts/compare.py -> OUT/comparison.md and OUT/crash_vs_speed.png; learning curve; a clip
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("slower", "idm", "rules", "random", "faster", "idle")
MONITOR = "safety=rss_exact"  # the evaluation default (configs/evaluate.yaml), spelled out in the commands printed


def run(script: str, *args: str) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / script), *args]
    print("$", " ".join(["python", f"scripts/{script}", *args]), flush=True)
    start = time.monotonic()
    subprocess.run(cmd, check=True)
    print(f"  ({time.monotonic() - start:.0f} s)", flush=True)


def evaluate(out: Path, *args: str) -> Path:
    if not (out / "metrics.json").is_file():
        run("evaluate.py", *args, f"out={out}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="pipeline", help="run name of the agent")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--generalization-episodes", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    run_dir = Path("runs") / args.name
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    if not Path("runs/perception/default/model.pt").is_file():
        run("train_perception.py")
    if not (run_dir / "model.zip").is_file():
        run("train_agent.py", f"run.name={args.name}", *(["resume=true"] if run_dir.exists() else []))

    n = f"episodes={args.episodes}"
    rows = {
        "agent + monitor": evaluate(out / "agent_rss", f"run={run_dir}", n, MONITOR, "video=1"),
        "agent, no monitor": evaluate(out / "agent_off", f"run={run_dir}", n, "safety=off"),
        "agent + monitor, 30% camera dropout": evaluate(
            out / "agent_rss_dropout30", f"run={run_dir}", n, MONITOR, "faults=dropout30"
        ),
    }
    for policy in BASELINES:
        rows[policy] = evaluate(out / policy, f"policy={policy}", n, "safety=off", "env.observation=kinematics")
    g = f"episodes={args.generalization_episodes}"
    rows["agent + monitor, env=highway"] = evaluate(out / "agent_rss_highway", f"run={run_dir}", g, "env=highway")
    rows["agent + monitor, env=merge"] = evaluate(out / "agent_rss_merge", f"run={run_dir}", g, "env=merge")

    labels = ",".join(label.replace(",", ";") for label in rows)
    table = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), *map(str, rows.values()), "--labels", labels,
         "--plot", str(out / "crash_vs_speed.png")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    (out / "comparison.md").write_text(table)
    print(table)
    run("plot_curves.py", str(run_dir), "--out", str(out / "learning_curve.png"))
    clips = sorted((out / "agent_rss" / "videos").glob("*.mp4"))
    if clips:
        shutil.copyfile(clips[0], out / "clip.mp4")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
