"""The switch of the end-to-end stages, augment and finetune: finetune.enabled. No TensorFlow here.

Both stages are in dvc.yaml, so that `dvc repro` runs every stage that `dvc status`, `dvc checkout`
and `dvc pull` look at. While finetune.enabled is false (the default) each one, in a fraction of a
second, writes one line in its model/ and results/ folders saying how to turn it on (a note, not
an empty folder, which DVC warns about), and no dvc.yaml of metrics and plots, so that
`dvc metrics show` and `dvc plots show` list nothing of it.
"""

import shutil
from pathlib import Path

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.layout import MODEL_DIR, OFF_NOTE, RESULTS_DIR

OFF_TEXT = ("switched off: finetune.enabled is false in params.yaml, so this stage trained nothing. "
            "Set it to true (dvc exp run -S finetune.enabled=true) to train it\n")


def switch_off(stage_dir: Path) -> None:
    """Leave the outputs of a switched-off end-to-end stage: the note alone in model/ and in results/.

    Args:
        stage_dir: the stage's folder (layout.AUGMENTED_DIR or FINETUNED_DIR).
    """
    (stage_dir / "dvc.yaml").unlink(missing_ok=True)  # its metrics and plots are gone
    for folder in (stage_dir / MODEL_DIR, stage_dir / RESULTS_DIR):
        shutil.rmtree(folder, ignore_errors=True)  # DVC has removed them already; a direct run too
        with atomic_path(folder / OFF_NOTE) as tmp:
            tmp.write_text(OFF_TEXT)
    print(f"{stage_dir.name}: {OFF_TEXT.strip()}")
