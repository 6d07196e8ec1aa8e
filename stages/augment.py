"""Train the head on the frozen conv base, end to end on augmented images: python -m stages.augment

The second rung of the ladder (Chollet, 5.3.1, "feature extraction with data augmentation"), with
finetune.enabled: true (dogs_vs_cats/end_to_end.py); switched off, it writes only a note
(dogs_vs_cats/opt_in.py). Writes finetune/augmented/ (model/classifier.keras, results/, dvc.yaml);
the `finetune` stage starts from it.
"""

from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import AUGMENTED_DIR
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.opt_in import switch_off


def main():
    params = load_params()
    if not params.finetune.enabled:
        switch_off(AUGMENTED_DIR)
        return
    # Imported only now: TensorFlow takes seconds to load, and a switched-off stage needs none of it.
    from dogs_vs_cats.end_to_end import train_augmented

    train_augmented(params)


if __name__ == "__main__":
    run_stage(main)
