"""Where the pipeline keeps its files: every path that dvc.yaml declares.

Every stage imports this module (dogs_vs_cats/core is in every stage's deps); it imports nothing,
so it is cheap.
"""

from pathlib import Path

PARAMS_FILE = Path("params.yaml")
DVC_FILE = Path("dvc.yaml")  # every stage; the end-to-end ones write a dvc.yaml of their plots too
SUBSETS = ("train", "validation", "test")

CHECKED_FILE = Path("data/params.checked")        # check: a constant stamp that orders the stages
MODEL_CHECKED_FILE = Path("data/model.checked")   # check_model: the same, for the conv base's stages
DOWNLOAD_DIR = Path("data/download")             # download: the photos' archive, or nothing
DOWNLOAD_FILE = DOWNLOAD_DIR / "photos.zip"       # download: there when split.raw_dir names it
NOT_DOWNLOADED = DOWNLOAD_DIR / "not_downloaded.txt"  # download: there when it names other photos
WEIGHTS_DIR = Path("weights")                     # local conv-base weights files: a dependency
SPLIT_DIR = Path("data/split")                    # split: <subset>/<class>/<image>
SPLIT_REPORT = SPLIT_DIR / "report.json"          # split: skipped files and why
CLASSES_FILE = SPLIT_DIR / "classes.json"         # split: the class names, in label order
QUANTIZED_DIR = Path("models/conv_base_int8")     # quantize: the int8 conv base, for extract
QUANTIZED_MODEL = QUANTIZED_DIR / "conv_base.xml"  # quantize: its weights are conv_base.bin beside it
FEATURES_DIR = Path("data/features")              # extract: <subset>/{features,labels}.npy, files.txt

HEAD_FILE = Path("models/head.keras")             # train: the head alone, on features
CLASSIFIER_FILE = Path("models/classifier.keras")  # train: raw image -> class probabilities
METRICS_FILE = Path("metrics.json")               # train
LIVE_DIR = Path("dvclive")                        # train: per-epoch history (DVCLive)
EVAL_DIR = Path("eval")
PREDICTIONS_FILE = EVAL_DIR / "predictions.json"  # train: one row per test image
ROC_FILE = EVAL_DIR / "roc.json"                  # plots
PRECISION_RECALL_FILE = EVAL_DIR / "precision_recall.json"  # plots
PLOTS_DIR = Path("plots")                         # plots: {accuracy,loss}.png, the recipe's curves
HEATMAPS_FILE = PLOTS_DIR / "heatmaps.jpg"        # heatmaps: what the classifier saw in some test images
LABEL_ISSUES_FILE = EVAL_DIR / "label_issues.json"  # label_issues: the photos whose label looks wrong
LABEL_QUALITY_FILE = EVAL_DIR / "label_quality.json"  # label_issues: how many, a metric
LABEL_ISSUES_GALLERY = PLOTS_DIR / "label_issues.jpg"  # label_issues: the most doubtful of them
PAGE_TEMPLATE = PLOTS_DIR / "page_template.html"  # page: the offline page of `dvc plots show` (.dvc/config)

# The end-to-end stages, augment and finetune (finetune.enabled): each writes under its own folder
# what train writes, by the same names. model/ (DVC-cached) holds classifier.keras; results/ (git)
# holds metrics.json, predictions.json and dvclive/; dvc.yaml beside them declares their metrics
# and plots. Switched off, a stage writes only OFF_NOTE, in model/ and in results/.
FINETUNE_DIR = Path("finetune")
AUGMENTED_DIR = FINETUNE_DIR / "augmented"        # augment: the head on the frozen conv base
FINETUNED_DIR = FINETUNE_DIR / "finetuned"        # finetune: the top of the conv base unfrozen too
MODEL_DIR, RESULTS_DIR = Path("model"), Path("results")  # in each of those folders
OFF_NOTE = Path("off.txt")                        # in both, while finetune.enabled is false
FINETUNED_HEATMAPS_DIR = FINETUNED_DIR / "heatmaps"  # heatmaps: the fine-tuned model's, or OFF_NOTE
FINETUNED_HEATMAPS = FINETUNED_HEATMAPS_DIR / HEATMAPS_FILE.name
