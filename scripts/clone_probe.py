"""What limits the camera clone? Held-out agreement with the teacher, with and without the ego's speed.

    python scripts/clone_probe.py [--steps 8000] [--out runs/clone_probe.json] [group=option ...] [key.path=value ...]

The teacher (the ``driver`` group) drives ``--steps`` env steps on training seeds (``run.seed``,
held out from evaluation); the ``perception`` backbone's frozen features of those frames are
fitted by a head shaped like the policy's (``agent.features_dim``, ``agent.net_arch``), with
``imitation``'s epochs and held-out share: on the features alone, with the ego's speed, and with
its speed and target-speed index. Prints each held-out agreement (by action and by effect) and
the teacher-by-head confusion; writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8000, help="env steps the teacher drives and is recorded")
    parser.add_argument("--n-envs", type=int, default=1, help="envs recording in parallel (> 1: subprocesses)")
    parser.add_argument("--out", type=Path, default=Path("runs/clone_probe.json"), help="JSON report")
    args, overrides = parser.parse_known_args(argv)
    if args.steps < 20 or args.n_envs < 1:
        parser.error("--steps must be >= 20 and --n-envs >= 1")
    return args, overrides


def table(report: dict) -> str:
    from agents.clone_probe import VARIANTS
    from agents.policies import ACTION_NAMES

    lines = [f"{report['samples']} teacher steps; held-out agreement of the clone's head (by action, by effect):"]
    for name in VARIANTS:
        r = report[name]
        lines.append(
            f"  {name:<20} {r['holdout_accuracy']:.1%}, {r['holdout_same_effect']:.1%} held out"
            f" ({r['train_accuracy']:.1%} train)"
        )
        lines.append("    teacher \\ head " + " ".join(f"{ACTION_NAMES[a][:6]:>6}" for a in sorted(ACTION_NAMES)))
        for action, row in enumerate(r["confusion"]):
            lines.append(f"    {ACTION_NAMES[action]:<15} " + " ".join(f"{n:>6}" for n in row))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args, overrides = parse(argv)
    from agents.clone_probe import probe
    from agents.config import load_train_config
    from agents.imitation import record
    from agents.ppo import build_ppo
    from agents.schema import ConfigError
    from agents.training import check_perception
    from agents.vec_env import make_vec_env
    from envs.io import write_json

    try:
        cfg = load_train_config(ROOT / "configs", overrides)
        if cfg.agent.policy != "cnn":
            raise ConfigError("agent: the probe needs the camera policy (agent=ppo_cnn)")
        check_perception(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.monotonic()
    venv = make_vec_env(
        cfg.env, cfg.reward, args.n_envs, cfg.run.seed, safety=cfg.safety, faults=cfg.faults, expert=cfg.driver
    )
    try:
        model = build_ppo(cfg.agent, cfg.perception, venv, cfg.run.seed, None)
        demos, tally = record(venv, args.steps, cfg.agent.gamma)
    finally:
        venv.close()
    hidden = [cfg.agent.features_dim, *cfg.agent.net_arch]
    report = probe(model.policy.features_extractor, demos, cfg.imitation, hidden, cfg.run.seed)
    report.update(teacher_driving=tally.summary(), seed=cfg.run.seed, wall_time_s=round(time.monotonic() - start, 1))
    write_json(args.out, report)
    print(table(report))
    print(f"wrote {args.out} ({report['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
