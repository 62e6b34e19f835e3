"""Train a PPO driver on highway-env.

    python scripts/train_agent.py [group=option ...] [key.path=value ...]

Examples:
    python scripts/train_agent.py reward=cautious agent.total_timesteps=50000 run.name=try1
    python scripts/train_agent.py run.name=try1 resume=true
    python scripts/train_agent.py preset=smoke
"""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from agents.config import load_train_config
    from agents.schema import ConfigError
    from agents.training import SIGNAL_EXIT, format_summary, train

    try:
        cfg = load_train_config(CONFIG_DIR, argv)
        result = train(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.interrupted_by is not None:
        print(
            f"stopped at step {result.timesteps}; checkpoint saved in {result.run_dir / 'checkpoints'}\n"
            f"continue with: python scripts/train_agent.py run.name={result.run_dir.name} "
            f"run.dir={result.run_dir.parent} resume=true",
            file=sys.stderr,
        )
        return SIGNAL_EXIT.get(result.interrupted_by, 1)
    print(format_summary(result.summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
