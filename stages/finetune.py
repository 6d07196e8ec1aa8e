"""Fine-tune the top of the conv base with the head: python -m stages.finetune

The third rung of the ladder (Chollet, 5.3.2), with finetune.enabled: true: starts from augment's
model, unfreezes the top of its conv base (finetune.unfreeze: top_block, the layers at its last
resolution; a layer name and every one above it; or a number N of last layers) and trains it with
the head (dogs_vs_cats/finetuning.py); switched off, it writes only a note (dogs_vs_cats/opt_in.py).
Writes finetune/finetuned/ (model/classifier.keras, results/, dvc.yaml).
"""

from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import FINETUNED_DIR
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.opt_in import switch_off


def main():
    params = load_params()
    if not params.finetune.enabled:
        switch_off(FINETUNED_DIR)
        return
    # Imported only now: TensorFlow takes seconds to load, and a switched-off stage needs none of it.
    from dogs_vs_cats.finetuning import fine_tune

    fine_tune(params)


if __name__ == "__main__":
    run_stage(main)
