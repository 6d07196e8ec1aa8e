"""Training the conv base and the head end to end on images: the augment stage, and what finetune shares.

Unlike `train`, which fits the head once on features extracted once, `augment` and `finetune` run
every image through the conv base at every epoch, so that each epoch sees new random flips,
rotations, zooms and shifts (Chollet, Deep Learning with Python, 5.3.1 "feature extraction with data
augmentation" and 5.3.2 "fine-tuning"). The augmentation is Keras layers inside the training model,
active only in training; images stream from data/split/ through tf.data, never all in memory.

Both run only with finetune.enabled: true (dogs_vs_cats/opt_in.py). Each stage writes, under its own
folder (AUGMENTED_DIR, FINETUNED_DIR), what `train` writes, by the same names:
  model/classifier.keras      raw image -> probabilities and class name, as models/classifier.keras
                              (works with predict.py --model); DVC-cached
  results/dvclive/            the per-epoch history, through DVCLive
  results/predictions.json    one row per test image: file, actual, predicted, probability
  results/metrics.json        loss and accuracy on train, validation and test; on test also ROC AUC,
                              confusion and each class's precision and recall
  dvc.yaml                    metrics.json as a metric and the plots of these files (as DVCLive
                              writes its own): defined only once the files exist, so that while the
                              stage is off `dvc metrics show` and `dvc plots show` have nothing to warn about;
                              finetune's lists heatmaps/heatmaps.jpg too, which the heatmaps stage draws
The classes are those of data/split/classes.json, with the head rule of `train` (model.build_head).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from dogs_vs_cats.conv_base import build_conv_base, check_conv_base
from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.classes import list_images, read_classes
from dogs_vs_cats.core.layout import (
    AUGMENTED_DIR,
    CLASSIFIER_FILE,
    LIVE_DIR,
    METRICS_FILE,
    MODEL_DIR,
    OFF_NOTE,
    PREDICTIONS_FILE,
    RESULTS_DIR,
    SPLIT_DIR,
)
from dogs_vs_cats.core.params import Finetune, Params
from dogs_vs_cats.core.runtime import keras, seed_everything
from dogs_vs_cats.evaluation import evaluate, export, history_callback
from dogs_vs_cats.images import image_dataset
from dogs_vs_cats.model import build_classifier, build_head, loss_for, preprocess_layer

if TYPE_CHECKING:
    from collections.abc import Sequence

    import tensorflow as tf


def augmentation(settings: Finetune, seed: int) -> keras.Sequential:
    """Random horizontal flips, rotations, zooms and shifts as Keras layers (a factor 0 leaves one out).

    Each layer has its own seed, so the same `seed` gives the same sequence of random images. Keras
    applies them in training only: validation, evaluation and the exported model see the images as
    they are.
    """
    layers = [keras.layers.RandomFlip("horizontal", seed=seed)]
    if settings.rotation:  # a fraction of a full turn: 0.1 is +-36 degrees
        layers.append(keras.layers.RandomRotation(settings.rotation, seed=seed + 1))
    if settings.zoom:
        layers.append(keras.layers.RandomZoom(settings.zoom, seed=seed + 2))
    if settings.shift:  # a fraction of the height and of the width
        layers.append(keras.layers.RandomTranslation(settings.shift, settings.shift, seed=seed + 3))
    return keras.Sequential(layers, name="augmentation")


def subset_dataset(subset: str, size: int, batch_size: int,
                   shuffle_seed: int | None = None) -> tuple[list[Path], list[int], tf.data.Dataset]:
    """The files and labels of a split subset, and its batches of (resized 0-255 images, labels)."""
    files, labels = list_images(SPLIT_DIR / subset, read_classes())
    return files, labels, image_dataset(files, size, batch_size, labels=labels, shuffle_seed=shuffle_seed)


def end_to_end_model(preprocess: keras.Layer, conv_base: keras.Model, head: keras.Model, augment: keras.Layer,
                     learning_rate: float) -> keras.Model:
    """Images -> augmentation -> preprocessing -> conv base -> head, compiled with RMSprop.

    Only the layers marked trainable learn: the head alone while the conv base is frozen. Frozen
    BatchNormalization layers run in inference mode (Keras 3), so their statistics stay as trained.
    """
    size = conv_base.input_shape[1]
    images = keras.Input(shape=(size, size, 3), name="image")
    model = keras.Model(images, head(conv_base(preprocess(augment(images)))), name="end_to_end")
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate),
                  loss=loss_for(head.output_shape[-1]), metrics=["accuracy"])
    return model


def fit(model: keras.Model, size: int, settings: Finetune, epochs: int, out_dir: Path) -> None:
    """Train on the shuffled train images, validating after each epoch; the history through DVCLive."""
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    print(f"training {trainable:,} of {model.count_params():,} weights for {epochs} epochs")
    start = time.perf_counter()
    *_, train = subset_dataset("train", size, settings.batch_size, shuffle_seed=settings.seed)
    *_, validation = subset_dataset("validation", size, settings.batch_size)
    model.fit(train, validation_data=validation, epochs=epochs, verbose=2,
              shuffle=False,  # the dataset shuffles itself; Keras cannot shuffle a tf.data.Dataset
              callbacks=[history_callback(out_dir / RESULTS_DIR / LIVE_DIR.name)])
    print(f"time: {epochs} epochs in {time.perf_counter() - start:.1f} s")


def results_definition(curves: str, confusion: str, images: Sequence[str] = ()) -> dict:
    """An end-to-end stage's dvc.yaml, paths relative to its folder: results/metrics.json as its
    metrics; the training curves titled "<Metric> <curves>", the test confusion matrix titled
    "Confusion matrix <confusion>", and `images`, as its plots."""
    history = f"{RESULTS_DIR}/{LIVE_DIR.name}/plots/metrics"
    plots = [{f"{metric.capitalize()} {curves}": {
        "template": "linear", "x": "step",
        "y": {f"{history}/{split}/{metric}.tsv": metric for split in ("train", "eval")},
        "x_label": "Epoch", "y_label": metric.capitalize()}} for metric in ("accuracy", "loss")]
    plots.append({f"Confusion matrix {confusion}": {
        "template": "confusion", "x": "actual", "y": {f"{RESULTS_DIR}/{PREDICTIONS_FILE.name}": "predicted"},
        "x_label": "Actual", "y_label": "Predicted"}})
    plots.extend(images)
    return {"metrics": [f"{RESULTS_DIR}/{METRICS_FILE.name}"], "plots": plots}


def evaluate_and_export(model: keras.Model, classifier: keras.Model, size: int, batch_size: int,
                        out_dir: Path, plot_titles: tuple[str, str], images: Sequence[str] = ()) -> None:
    """Evaluate `model` on the three subsets, then write the classifier, predictions, metrics and
    the dvc.yaml that declares them (`plot_titles`: results_definition's curves and confusion;
    `images`: its image plots, which later stages draw)."""
    start = time.perf_counter()
    datasets = {subset: subset_dataset(subset, size, batch_size)[2] for subset in ("train", "validation")}
    test_files, test_labels, datasets["test"] = subset_dataset("test", size, batch_size)
    metrics, predictions = evaluate(model, datasets, test_files, test_labels, read_classes())

    for folder in (MODEL_DIR, RESULTS_DIR):  # the notes of a switched-off run
        (out_dir / folder / OFF_NOTE).unlink(missing_ok=True)
    results = out_dir / RESULTS_DIR
    export(classifier, out_dir / MODEL_DIR / CLASSIFIER_FILE.name, metrics, results / METRICS_FILE.name,
           predictions, results / PREDICTIONS_FILE.name)
    with atomic_path(out_dir / "dvc.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(results_definition(*plot_titles, images), sort_keys=False))
    print(f"time: evaluation and export in {time.perf_counter() - start:.1f} s")


def train_augmented(params: Params | dict) -> None:
    """The augment stage: the head of `train` on the frozen conv base, end to end on augmented images.

    The conv base of `conv_base` (frozen) and the head of `train` (train.units, train.dropout,
    RMSprop at finetune.head_learning_rate) in one model behind random flips, rotations, zooms and
    shifts, for finetune.head_epochs epochs; written to AUGMENTED_DIR, where `finetune` starts from.

    Args:
        params: params.yaml (core.params.load_params).
    """
    params = Params.of(params)
    # Every parameter checked before any work: augment's, train's head, the conv base.
    settings, head_shape, conv = params.finetune, params.train, check_conv_base(params)
    classes = read_classes()
    conv_base, preprocess_input = build_conv_base(conv, "float32")  # frozen
    seed_everything(settings.seed)  # after build_conv_base, which seeds for its own initialisation
    head = build_head(conv_base.output_shape[1:], head_shape.units, head_shape.dropout,
                      settings.head_learning_rate, classes)
    model = end_to_end_model(preprocess_layer(preprocess_input), conv_base, head,
                             augmentation(settings, settings.seed), settings.head_learning_rate)
    print(f"augment: {conv_base.name} (frozen) + head")
    fit(model, conv.input_size, settings, settings.head_epochs, AUGMENTED_DIR)
    # The export shares the trained layers: resizing, preprocessing, conv base and head, no augmentation.
    classifier = build_classifier(conv_base, preprocess_input, head, classes)
    evaluate_and_export(model, classifier, conv.input_size, settings.batch_size, AUGMENTED_DIR,
                        plot_titles=("with augmentation (frozen conv base)", "(test, augmentation)"))
