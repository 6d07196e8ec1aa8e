"""Where the pipeline keeps its files: the paths dvc.yaml declares, in one place.

Every stage imports this module (and lists it in its `deps`); it imports nothing, so it is cheap.
"""

from pathlib import Path

PARAMS_FILE = Path("params.yaml")
SUBSETS = ("train", "validation", "test")

SPLIT_DIR = Path("data/split")                    # split: <subset>/<class>/<image>
SPLIT_REPORT = SPLIT_DIR / "report.json"          # split: skipped files and why
QUANTIZED_DIR = Path("models/conv_base_int8")     # quantize: the int8 conv base, for extract
FEATURES_DIR = Path("data/features")              # extract: <subset>/{features,labels}.npy, files.txt

HEAD_FILE = Path("models/head.keras")             # train: the head alone, on features
CLASSIFIER_FILE = Path("models/classifier.keras")  # train: raw image -> P(dog)
METRICS_FILE = Path("metrics.json")               # train
LIVE_DIR = Path("dvclive")                        # train: per-epoch history (DVCLive)
EVAL_DIR = Path("eval")
PREDICTIONS_FILE = EVAL_DIR / "predictions.json"  # train: one row per test image
ROC_FILE = EVAL_DIR / "roc.json"                  # plots
PRECISION_RECALL_FILE = EVAL_DIR / "precision_recall.json"  # plots
PLOTS_DIR = Path("plots")                         # plots: PNG curves, JPEG gallery
