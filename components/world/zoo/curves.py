"""Each world model's check against its training steps: what a longer run would buy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Issue 28's bars for the release, drawn beside each curve
TARGETS = {"clip": 0.90, "metric-clip": 0.85, "sd-inpainting": 0.70}
LABELS = {
    "clip": "method CLIP: swapped-caption accuracy",
    "metric-clip": "metric CLIP: swapped-caption accuracy",
    "sd-inpainting": "inpainter: edit success in the ground-truth region",
    "instruction-encoder": "instruction encoder (T5): swapped-caption accuracy",
}


def plot_curves(curves: dict[str, list[dict[str, float]]], out: Path) -> Path:
    """One panel per model: its check (held-out scenes) at each measured step, and its bar."""
    names = [name for name, curve in curves.items() if curve]
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(4.2 * max(len(names), 1), 3.4))
    for axis, name in zip(figure.axes, names, strict=False):
        steps = [point["step"] for point in curves[name]]
        axis.plot(steps, [point["check"] for point in curves[name]], marker="o")
        if name in TARGETS:
            target = TARGETS[name]
            axis.axhline(target, color="grey", linestyle="--", label=f"target {target}")
        axis.set(title=LABELS[name], xlabel="training step", ylim=(0, 1))
        axis.title.set_fontsize(9)
        if name in TARGETS:
            axis.legend(loc="lower right", fontsize=8)
    figure.suptitle("The world's release: each model's check along its training", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
