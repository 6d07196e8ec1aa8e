"""Draw the recipe's two figures from the training history DVCLive logged.

plots/accuracy.png: training and validation accuracy per epoch
plots/loss.png:     training and validation loss per epoch
"""

import csv

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from stages.common import LIVE_DIR, PLOTS_DIR, atomic_path  # noqa: E402

HISTORY_DIR = LIVE_DIR / "plots" / "metrics"


def read_history(split, metric):
    """Epochs and values of one metric DVCLive logged, for split 'train' or 'eval'."""
    with open(HISTORY_DIR / split / f"{metric}.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [int(row["step"]) + 1 for row in rows], [float(row[metric]) for row in rows]


def draw(metric, title):
    """One figure: the training curve as dots, the validation curve as a line, as in the original."""
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(*read_history("train", metric), "bo", label=f"Training {metric}")
    axes.plot(*read_history("eval", metric), "b", label=f"Validation {metric}")
    axes.set(title=title, xlabel="Epoch", ylabel=metric.capitalize())
    axes.legend()
    figure.tight_layout()
    with atomic_path(PLOTS_DIR / f"{metric}.png") as tmp:
        figure.savefig(tmp, dpi=100, metadata={"Software": None})  # no version stamp: same bytes each run
    plt.close(figure)


def main():
    draw("accuracy", "Training and validation accuracy")
    draw("loss", "Training and validation loss")
    print(f"wrote {PLOTS_DIR}/accuracy.png and {PLOTS_DIR}/loss.png")


if __name__ == "__main__":
    main()
