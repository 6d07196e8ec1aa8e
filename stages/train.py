"""Train the dense head on the extracted features and evaluate it.

Dense(units, relu) -> Dropout -> Dense(1, sigmoid) on the flattened conv-base features, RMSprop,
binary cross-entropy. Writes the model to models/head.keras, the per-epoch history through
DVCLive to dvclive/, and loss and accuracy on train, validation and test to metrics.json.
"""

import numpy as np

from stages.common import (FEATURES_DIR, LIVE_DIR, METRICS_FILE, MODEL_FILE, SUBSETS, ParamError,
                           atomic_path, load_params, positive_int, positive_number, seed_everything, write_json)


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

    params = load_params()["train"]
    check_params(params)
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

    with atomic_path(MODEL_FILE) as tmp:
        model.save(tmp)
    write_json(METRICS_FILE, metrics)


if __name__ == "__main__":
    main()
