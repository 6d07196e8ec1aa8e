"""Train the dense head on the extracted features, evaluate it and export the full classifier.

Dense(units, relu) -> Dropout -> Dense(1, sigmoid) on the flattened conv-base features, RMSprop,
binary cross-entropy. Writes
  models/head.keras        the head alone, on conv-base features
  models/classifier.keras  raw image -> P(dog): resizing, preprocessing, conv base and head
  dvclive/                 the per-epoch history, through DVCLive
  eval/predictions.json    one row per test image: file, actual, predicted, probability (of dog)
  metrics.json             loss and accuracy on train, validation and test; on test also the
                           ROC AUC and the confusion counts (false_dogs: cats predicted dog)
"""

import numpy as np

from stages.classifier import CLASSIFIER_FILE, LABELS, PREDICTIONS_FILE, build_classifier, label_of
from stages.common import (FEATURES_DIR, LIVE_DIR, METRICS_FILE, MODEL_FILE, SPLIT_DIR, SUBSETS,
                           ParamError, atomic_path, build_conv_base, check_conv_base_params,
                           load_params, positive_int, positive_number, seed_everything, write_json)


def check_params(params):
    """Validate the train section before any work is done."""
    for key in ("units", "epochs", "batch_size"):
        positive_int("train", params, key)
    positive_number("train", params, "learning_rate")
    dropout = params.get("dropout")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ParamError("train.dropout", f"must be a rate in [0, 1), got {dropout!r}",
                         "set train.dropout to e.g. 0.5")


def load_features(subset):
    """The features and labels `extract` wrote for one subset."""
    return (np.load(FEATURES_DIR / subset / "features.npy"),
            np.load(FEATURES_DIR / subset / "labels.npy"))


def list_predictions(subset, labels, probabilities):
    """One row per image of `subset`, in the order extract wrote them."""
    files = (FEATURES_DIR / subset / "files.txt").read_text().splitlines()
    return [{"file": str(SPLIT_DIR / file), "actual": LABELS[int(label)],
             "predicted": label_of(probability), "probability": round(float(probability), 6)}
            for file, label, probability in zip(files, labels, probabilities)]


def classification_metrics(predictions, probabilities):
    """ROC AUC and confusion counts, with dog as the positive class."""
    from sklearn.metrics import roc_auc_score

    def count(actual, predicted):
        return sum(row["actual"] == actual and row["predicted"] == predicted for row in predictions)

    cat, dog = LABELS
    actual_dogs = [row["actual"] == dog for row in predictions]
    return {
        "roc_auc": round(float(roc_auc_score(actual_dogs, probabilities)), 4),
        "confusion": {"true_cats": count(cat, cat), "false_dogs": count(cat, dog),
                      "false_cats": count(dog, cat), "true_dogs": count(dog, dog)},
    }


def build_head(feature_shape, units, dropout, learning_rate):
    """The densely connected classifier that sits on top of the frozen conv base."""
    import keras

    model = keras.Sequential([
        keras.Input(shape=feature_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="head")
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model


def main():
    from dvclive.keras import DVCLiveCallback

    all_params = load_params()
    params = all_params["train"]
    check_params(params)
    check_conv_base_params(all_params["conv_base"])
    seed_everything(params["seed"])
    data = {subset: load_features(subset) for subset in SUBSETS}

    model = build_head(data["train"][0].shape[1:], params["units"], params["dropout"],
                       params["learning_rate"])
    # DVCLive writes the history as dvclive/plots/metrics/{train,eval}/{loss,accuracy}.tsv; the
    # plots that use it are declared in dvc.yaml, so DVCLive writes no dvc.yaml of its own.
    model.fit(*data["train"], validation_data=data["validation"], epochs=params["epochs"],
              batch_size=params["batch_size"], verbose=2,
              callbacks=[DVCLiveCallback(dir=str(LIVE_DIR), dvcyaml=None, save_dvc_exp=False)])

    metrics = {}
    for subset, (features, labels) in data.items():
        loss, accuracy = model.evaluate(features, labels, batch_size=params["batch_size"], verbose=0)
        metrics[subset] = {"loss": round(loss, 4), "accuracy": round(accuracy, 4)}
        print(f"{subset}: loss {loss:.4f}, accuracy {accuracy:.4f}")

    probabilities = model.predict(data["test"][0], batch_size=params["batch_size"], verbose=0)[:, 0]
    predictions = list_predictions("test", data["test"][1], probabilities)
    metrics["test"].update(classification_metrics(predictions, probabilities))
    print(f"test: ROC AUC {metrics['test']['roc_auc']:.4f}, {metrics['test']['confusion']}")

    # The same conv base extract ran (same weights or seed), in float32 whatever extract used.
    conv_base, preprocess_input = build_conv_base(all_params["conv_base"], "float32")
    classifier = build_classifier(conv_base, preprocess_input, model)

    with atomic_path(MODEL_FILE) as tmp:
        model.save(tmp)
    with atomic_path(CLASSIFIER_FILE) as tmp:
        classifier.save(tmp)
    write_json(PREDICTIONS_FILE, predictions)
    write_json(METRICS_FILE, metrics)


if __name__ == "__main__":
    main()
