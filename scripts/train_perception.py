"""Train the perception CNN as an image classifier.

    python scripts/train_perception.py                                     # highway scene dataset
    python scripts/train_perception.py dataset=mnist dataset.path=~/mnist  # MNIST IDX files
    python scripts/train_perception.py train.epochs=20 name=long

Writes model.pt, metrics.json and confusion_matrix.png to out= (default runs/perception/<name>/).
"""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from agents.config import compose
    from agents.schema import ConfigError, explain_unknown_key, from_dict
    from perception.config import PerceptionTrainConfig
    from perception.mnist import IDXError
    from perception.training import train_classifier

    try:
        try:
            data = compose(CONFIG_DIR, "train_perception", argv)
        except ConfigError as err:
            raise ConfigError(explain_unknown_key(PerceptionTrainConfig, str(err))) from None
        cfg = from_dict(PerceptionTrainConfig, data)
        out = Path(cfg.out).expanduser() if cfg.out else Path("runs") / "perception" / cfg.name
        metrics = train_classifier(cfg, out)
    except (ConfigError, IDXError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{out}: test accuracy {metrics['test_accuracy']:.4f}, "
        f"balanced accuracy {metrics['test_balanced_accuracy']:.4f} (best epoch {metrics['best_epoch']})"
    )
    for name, c in metrics["per_class"].items():
        print(f"  {name:>6}  precision {c['precision']:.3f}  recall {c['recall']:.3f}  n={c['support']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
