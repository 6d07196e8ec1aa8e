"""The two classes: folder names, label names, and the threshold that turns P(dog) into a label."""

CLASSES = ("cats", "dogs")  # folder names of label 0 and label 1: the model outputs P(dog)
LABELS = tuple(name.removesuffix("s") for name in CLASSES)  # "cat", "dog"
THRESHOLD = 0.5  # the threshold of Keras' accuracy metric, so counts and accuracy agree


def label_of(probability):
    """The predicted label name for one P(dog)."""
    return LABELS[int(probability > THRESHOLD)]
