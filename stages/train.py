"""Train the dense head on the extracted features, evaluate it and export the full classifier.

Dense(units, relu) -> Dropout -> Dense(1, sigmoid) on the flattened conv-base features, RMSprop,
binary cross-entropy. Writes
  models/head.keras        the head alone, on conv-base features (weights only, no optimizer state)
  models/classifier.keras  raw image -> P(dog): resizing, preprocessing, conv base and head
  dvclive/                 the per-epoch history, through DVCLive
  eval/predictions.json    one row per test image: file, actual, predicted, probability (of dog)
  metrics.json             loss and accuracy on train, validation and test; on test also the
                           ROC AUC and the confusion counts (false_dogs: cats predicted dog)
"""

import time

import numpy as np

from stages.atomic import atomic_path, write_json
from stages.conv_base import build_conv_base, check_conv_base
from stages.evaluation import prediction_rows, subset_metrics
from stages.layout import (
    CLASSIFIER_FILE,
    FEATURES_DIR,
    HEAD_FILE,
    LIVE_DIR,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SPLIT_DIR,
    SUBSETS,
)
from stages.model import (
    EVALUATION_BATCH_SIZE,
    build_classifier,
    build_head,
    check_head,
    fit_head,
    inference_copy,
)
from stages.params import integer, load_params, positive_int, positive_number, section
from stages.runtime import seed_everything


def check_params(params):
    """The train section, checked (and the conv_base section, which the export rebuilds)."""
    check_head(params)
    for key in ("epochs", "batch_size"):
        positive_int(params, f"train.{key}")
    positive_number(params, "train.learning_rate")
    integer(params, "train.seed")
    return section(params, "train"), check_conv_base(params)


def load_features(subset):
    """The features and labels `extract` wrote for one subset."""
    return (np.load(FEATURES_DIR / subset / "features.npy"),
            np.load(FEATURES_DIR / subset / "labels.npy"))


def list_predictions(subset, labels, probabilities):
    """One row per image of `subset`, in the order extract wrote them."""
    files = (FEATURES_DIR / subset / "files.txt").read_text().splitlines()
    return prediction_rows([SPLIT_DIR / file for file in files], labels, probabilities)


def main():
    from dvclive.keras import DVCLiveCallback

    params, conv_params = check_params(load_params())
    seed_everything(params["seed"])
    data = {subset: load_features(subset) for subset in SUBSETS}
    timings = {}

    start = time.perf_counter()
    model = build_head(data["train"][0].shape[1:], params["units"], params["dropout"],
                       params["learning_rate"])
    # DVCLive writes the history as dvclive/plots/metrics/{train,eval}/{loss,accuracy}.tsv; the
    # plots that use it are declared in dvc.yaml, so DVCLive writes no dvc.yaml of its own.
    fit_head(model, data["train"], data["validation"], params["epochs"], params["batch_size"],
             callbacks=[DVCLiveCallback(dir=str(LIVE_DIR), dvcyaml=None, save_dvc_exp=False)])
    timings["epochs"] = time.perf_counter() - start

    start = time.perf_counter()
    results = {subset: model.evaluate(*data[subset], batch_size=EVALUATION_BATCH_SIZE, verbose=0)
               for subset in ("train", "validation")}
    probabilities = model.predict(data["test"][0], batch_size=EVALUATION_BATCH_SIZE, verbose=0)[:, 0]
    predictions = list_predictions("test", data["test"][1], probabilities)
    metrics = subset_metrics(results, predictions, probabilities)
    timings["evaluation"] = time.perf_counter() - start

    start = time.perf_counter()
    # The same conv base extract ran (same weights or seed), in float32 whatever extract used.
    conv_base, preprocess_input = build_conv_base(conv_params, "float32")
    classifier = build_classifier(conv_base, preprocess_input, model)
    with atomic_path(HEAD_FILE) as tmp:
        inference_copy(model).save(tmp)
    with atomic_path(CLASSIFIER_FILE) as tmp:
        classifier.save(tmp)
    write_json(PREDICTIONS_FILE, predictions)
    write_json(METRICS_FILE, metrics)
    timings["export"] = time.perf_counter() - start
    print("time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))


if __name__ == "__main__":
    main()
