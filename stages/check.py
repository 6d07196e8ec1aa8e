"""Check params.yaml before any other stage runs: python -m stages.check

DVC removes a stage's outputs before it runs the stage, so a bad parameter found by `train` costs
the user the metrics and models of the previous run. This stage comes first in the pipeline (every
other stage depends on its output) and checks every key and value of params.yaml, so DVC stops
here, before it removes anything. It also reports keys that no stage reads (a typo such as
`train.learnig_rate`), with the closest known key, and a missing raw folder by its parameter,
before DVC reports the missing `split` dependency by its path. The parameters of augment and
finetune are checked too, switched on or not, so that turning them on never fails on a value set
long before.

It imports no TensorFlow, so it takes a fraction of a second after any change of params.yaml; what
needs the conv base's architecture is the check_model stage's (stages/check_model.py).

Writes data/params.checked, whose content never changes: it only orders the stages. A local weights
file that DVC does not track yet gets a note with the `dvc add` that shares it.
"""

from dogs_vs_cats.checks import check_every_stage, check_keys, known_keys
from dogs_vs_cats.conv_base import untracked_weights
from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import CHECKED_FILE
from dogs_vs_cats.core.params import load_params


def main():
    params = load_params()
    check_keys(params.values, known_keys())
    check_every_stage(params)
    with atomic_path(CHECKED_FILE) as tmp:
        tmp.write_text("params.yaml passed stages/check.py\n")
    print("params.yaml: every key is read by a stage and every value is valid (the conv base's "
          "architecture: check_model)")
    weights = untracked_weights(params)
    if weights is not None:
        print(f"note: DVC does not track {weights}, so queued experiments and clones go without it; "
              f"`dvc add {weights}` tracks it (README: Weights)")


if __name__ == "__main__":
    run_stage(main)
