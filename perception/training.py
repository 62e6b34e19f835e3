"""Classifier training: data -> model -> epochs (best on validation) -> test metrics and figures."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from envs.io import atomic_write, write_json
from perception import mnist, scenes
from perception.config import PerceptionTrainConfig
from perception.labels import FACTS, flip_label
from perception.model import PerceptionNet, save_checkpoint

Split = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass
class Dataset:
    """Images (N, C, H, W) uint8 and labels per split, plus what the classes mean."""

    splits: dict[str, Split]
    class_names: list[str]
    kind: str
    info: dict[str, Any]


def load_dataset(cfg: PerceptionTrainConfig, log: Callable[[str], None] = print) -> Dataset:
    """The configured dataset; the highway scenes are generated first if missing or stale."""
    d = cfg.dataset
    if d.kind == "mnist":
        data = mnist.load_mnist(d.path)
        x, y = data["train"]
        order = np.random.default_rng(d.seed).permutation(len(y))
        n_val = max(1, int(round(d.val_fraction * len(y))))
        val, train = order[:n_val], order[n_val:]
        splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": data["test"]}
        return Dataset(splits, mnist.CLASS_NAMES, "mnist", {"path": str(d.path)})
    if not scenes.matches(d.path, d, cfg.env):
        log(f"generating the highway scene dataset in {d.path} ({d.episodes} episodes) ...")
        from tqdm import tqdm

        with tqdm(total=d.episodes, unit="episode") as bar:
            scenes.generate(d, cfg.env, progress=bar.update)
    splits = {}
    for split in scenes.SPLITS:
        frames, labels, _ = scenes.load_split(d.path, split)
        splits[split] = (frames, labels)
    manifest = scenes.read_manifest(d.path)
    return Dataset(splits, list(manifest["class_names"]), "highway", {"manifest": manifest})


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes); absent classes get 0."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


class Augmenter:
    """Label-preserving augmentation for each dataset kind."""

    def __init__(self, kind: str, generator: torch.Generator, n_classes: int = 8) -> None:
        self.kind = kind
        self.gen = generator
        self.flip = torch.tensor([flip_label(c) for c in range(n_classes)] if kind == "highway" else [])

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float()
        if self.kind == "highway":
            # Mirroring across the road is another valid scene with left and right swapped.
            mirror = torch.rand(len(x), generator=self.gen) < 0.5
            x[mirror] = x[mirror].flip(-1)
            y = torch.where(mirror, self.flip[y], y)
            x = (x + 3.0 * torch.randn(x.shape, generator=self.gen)).clamp(0, 255)
        else:
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=self.gen))
            x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        return x, y


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(torch.from_numpy(x[i : i + batch_size])).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def scores(cm: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over present classes), per-class precision/recall."""
    support, predicted, correct = cm.sum(1), cm.sum(0), np.diag(cm)
    present = support > 0
    recall = np.divide(correct, support, out=np.zeros(len(cm)), where=present)
    precision = np.divide(correct, predicted, out=np.zeros(len(cm)), where=predicted > 0)
    return {
        "accuracy": float(correct.sum() / max(cm.sum(), 1)),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
    }


def fact_scores(cm: np.ndarray) -> dict[str, dict[str, float]]:
    """Per yes/no fact of a highway label set (L, A, R, B: see :mod:`perception.labels`), how well the
    predicted classes get it right, whatever the other facts: precision, recall and accuracy."""
    classes = np.arange(len(cm))
    out = {}
    for letter, bit in FACTS.items():
        if bit >= len(cm):
            continue
        has = (classes & bit) > 0
        tp, fn, fp = cm[has][:, has].sum(), cm[has][:, ~has].sum(), cm[~has][:, has].sum()
        out[letter] = {
            "precision": float(tp / max(tp + fp, 1)),
            "recall": float(tp / max(tp + fn, 1)),
            "accuracy": float((cm.sum() - fn - fp) / max(cm.sum(), 1)),
            "support": int(tp + fn),
        }
    return out


def pixel_stats(x: np.ndarray, sample: int = 2000) -> tuple[float, float]:
    """Mean and std of pixels in [0, 1] units, from up to ``sample`` images."""
    idx = np.linspace(0, len(x) - 1, min(sample, len(x))).astype(int)
    pixels = x[idx].astype(np.float32) / 255.0
    return float(pixels.mean()), float(max(pixels.std(), 1e-3))


def train_classifier(cfg: PerceptionTrainConfig, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, keep the best epoch on validation, test it, and write model.pt, metrics.json and the figure."""
    from tqdm import tqdm

    t = cfg.train
    torch.manual_seed(t.seed)
    data = load_dataset(cfg, log)
    (x_train, y_train), (x_val, y_val) = data.splits["train"], data.splits["val"]
    n_classes = len(data.class_names)
    mean, std = pixel_stats(x_train)
    model = PerceptionNet(tuple(x_train.shape[1:]), n_classes, mean, std, t.hidden, t.dropout)
    weights = class_weights(y_train, n_classes) if t.balance else None
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = max(1, len(y_train) // t.batch_size)
    # A short warm-up: from scratch the CNN sits on a plateau until the step size is large.
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, t.lr, total_steps=t.epochs * steps_per_epoch, pct_start=0.1
    )
    gen = torch.Generator().manual_seed(t.seed)
    augment = Augmenter(data.kind, gen, n_classes)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)

    best = {"balanced_accuracy": -1.0}
    history, start = [], time.monotonic()
    for epoch in range(1, t.epochs + 1):
        model.train()
        order = torch.randperm(len(yt), generator=gen)
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{t.epochs}", unit="batch", leave=False)
        for step in bar:
            idx = order[step * t.batch_size : (step + 1) * t.batch_size]
            x, y = augment(xt[idx], yt[idx]) if t.augment else (xt[idx].float(), yt[idx])
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val = scores(confusion(y_val, predict(model, x_val), n_classes), data.class_names)
        acc, bal = val["accuracy"], val["balanced_accuracy"]
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "accuracy": acc, "balanced_accuracy": bal})
        log(f"epoch {epoch}: loss {np.mean(losses):.4f}  val acc {acc:.4f}  balanced {bal:.4f}")
        if bal > best["balanced_accuracy"]:
            state = {k: v.clone() for k, v in model.state_dict().items()}
            best = {"balanced_accuracy": bal, "epoch": epoch, "state": state}

    model.load_state_dict(best["state"])
    x_test, y_test = data.splits["test"]
    cm = confusion(y_test, predict(model, x_test), n_classes)
    test = scores(cm, data.class_names)
    metrics = {
        "dataset": data.kind,
        "test_accuracy": test["accuracy"],
        "test_balanced_accuracy": test["balanced_accuracy"],
        "per_class": test["per_class"],
        "best_epoch": best["epoch"],
        "val_balanced_accuracy": best["balanced_accuracy"],
        "class_counts": {s: np.bincount(y, minlength=n_classes).tolist() for s, (_, y) in data.splits.items()},
        "history": history,
        "train_seconds": round(time.monotonic() - start, 1),
        "confusion_matrix": cm.tolist(),
    }
    if data.kind == "highway":
        metrics["test_facts"] = fact_scores(cm)
    meta = {
        "input_shape": list(x_train.shape[1:]),
        "mean": mean,
        "std": std,
        "class_names": data.class_names,
        "hidden": t.hidden,
        "dropout": t.dropout,
        "config": _plain(dataclasses.asdict(cfg)),
        "test_accuracy": test["accuracy"],
        "test_balanced_accuracy": test["balanced_accuracy"],
    }
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion(cm, data.class_names, out / "confusion_matrix.png")
    write_json(out / "metrics.json", metrics)
    save_checkpoint(out / "model.pt", model, meta)
    return metrics


def _plain(value: Any) -> Any:
    """Only plain data goes in a checkpoint (weights_only loading)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def plot_confusion(cm: np.ndarray, class_names: list[str], path: Path) -> Path:
    """Row-normalized confusion matrix with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(cm), 0.8 + 0.6 * len(cm)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cm)), class_names, rotation=45)
    ax.set_yticks(range(len(cm)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(cm)):
        for j in range(len(cm)):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    fig.tight_layout()
    try:
        return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    finally:
        plt.close(fig)
