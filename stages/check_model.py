"""Check the parameters that need the conv base's architecture: python -m stages.check_model

conv_base.name must be a keras.applications constructor that takes conv_base.input_size, and
finetune.unfreeze must name one of its layers or fit in it (finetuning.check_layers). Building the
architecture takes TensorFlow, seconds to start, so this stage has params of its own: it reruns
when these three change, not after every change of params.yaml as the check stage does. The stages
that build a conv base depend on its output, so DVC stops here before it removes any of theirs.

Writes data/model.checked, whose content never changes: it only orders the stages.
"""

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import MODEL_CHECKED_FILE
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.finetuning import check_layers


def main():
    check_layers(load_params())
    with atomic_path(MODEL_CHECKED_FILE) as tmp:
        tmp.write_text("conv_base.name, .input_size and finetune.unfreeze passed stages/check_model.py\n")
    print("conv_base and finetune.unfreeze fit the conv base's architecture")


if __name__ == "__main__":
    run_stage(main)
