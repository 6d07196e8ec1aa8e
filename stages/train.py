"""Train the dense head on the extracted features, evaluate it, export the classifier: python -m stages.train

Dense(units, relu) -> Dropout -> Dense(1, sigmoid) on the flattened conv-base features, RMSprop,
binary cross-entropy; with more than two classes (data/split/classes.json), Dense(classes, softmax)
and sparse categorical cross-entropy. train.class_weight: balanced weighs each class the same.
Writes
  models/head.keras        the head alone, on conv-base features (weights only, no optimizer state)
  models/classifier.keras  raw image -> probabilities and class name: resizing, preprocessing, conv
                           base, head, and the class names
  dvclive/                 the per-epoch history, through DVCLive
  eval/predictions.json    one row per test image: file, actual, predicted, probability (of the
                           second class, P(dog), for two classes)
  metrics.json             loss and accuracy on train, validation and test; on test also the ROC
                           AUC, the confusion counts (false_dogs: cats predicted dog) and each
                           class's precision and recall
"""

import time

from dogs_vs_cats.conv_base import build_conv_base, check_conv_base
from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.classes import read_classes
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import (
    CLASSIFIER_FILE,
    FEATURES_DIR,
    HEAD_FILE,
    LIVE_DIR,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SPLIT_DIR,
    SUBSETS,
)
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.core.runtime import seed_everything
from dogs_vs_cats.evaluation import evaluate, export, history_callback
from dogs_vs_cats.features import feature_batches
from dogs_vs_cats.model import (
    EVALUATION_BATCH_SIZE,
    build_classifier,
    build_head,
    class_weights,
    fit_head,
    inference_copy,
)


def main():
    params = load_params()
    train, conv = params.train, check_conv_base(params)  # the export rebuilds the conv base
    classes = read_classes()
    seed_everything(train.seed)
    # Features stream from disk batch by batch (memory does not grow with the number of photos).
    evaluation = {subset: feature_batches(FEATURES_DIR / subset, EVALUATION_BATCH_SIZE) for subset in SUBSETS}
    train_batches, train_labels = feature_batches(FEATURES_DIR / "train", train.batch_size,
                                                  shuffle_seed=train.seed)
    timings = {}

    start = time.perf_counter()
    model = build_head(train_batches.element_spec[0].shape[1:], train.units, train.dropout,
                       train.learning_rate, classes)
    fit_head(model, train_batches, evaluation["validation"][0], train.epochs,
             callbacks=[history_callback(LIVE_DIR)],
             class_weight=class_weights(train_labels, train.class_weight, len(classes)))
    timings["epochs"] = time.perf_counter() - start

    start = time.perf_counter()
    test_files = (FEATURES_DIR / "test" / "files.txt").read_text().splitlines()  # in extract's order
    metrics, predictions = evaluate(model, {subset: batches for subset, (batches, _) in evaluation.items()},
                                    [SPLIT_DIR / file for file in test_files], evaluation["test"][1], classes)
    timings["evaluation"] = time.perf_counter() - start

    start = time.perf_counter()
    # The same conv base extract ran (same weights or seed), in float32 whatever extract used.
    conv_base, preprocess_input = build_conv_base(conv, "float32")
    classifier = build_classifier(conv_base, preprocess_input, model, classes)
    with atomic_path(HEAD_FILE) as tmp:
        inference_copy(model).save(tmp)
    export(classifier, CLASSIFIER_FILE, metrics, METRICS_FILE, predictions, PREDICTIONS_FILE)
    timings["export"] = time.perf_counter() - start
    print("time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))


if __name__ == "__main__":
    run_stage(main)
