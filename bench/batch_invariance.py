"""Does an engine give a photo the same feature bytes whatever batch it is in? What the feature store
(dogs_vs_cats/feature_store.py) relies on for "never a different result than an empty store".

    python -m bench.batch_invariance PHOTOS [--weights WEIGHTS.h5] [--photos 40]

For VGG16 at 150 (random weights) and, given its weights, the pretrained MobileNetV2 at 160, on
each engine and precision of this CPU (int8 calibrated on 8 of the photos): the features of the
photos computed in batches of 32 in order, against the same photos shuffled into batches of 32, of
7 and of 1, and a last short batch padded to 32; on OpenVINO, which compiles for one batch size
(32 here; shorter batches padded), also compiled for batches of 7 with several in flight on its
streams (run_batches, as extract runs it), and for latency (as a Ray actor runs it).
Prints, for each, how many photos came out with the same bytes and the largest difference.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.params import ConvBase
from dogs_vs_cats.engines import load_engine, openvino_model, quantize, run_batches, save_openvino
from dogs_vs_cats.images import image_dataset

COMBINATIONS = [("keras", "float32"), ("keras", "bfloat16"), ("openvino", "float32"),
                ("openvino", "bfloat16"), ("openvino", "int8")]


def in_batches(run, images, order, size, pad=False):
    """The features of `images`, computed `size` at a time in the order `order`, in their own order."""
    out = None
    for start in range(0, len(order), size):
        rows = order[start:start + size]
        batch = images[rows]
        if pad and len(batch) < size:
            batch = np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])
        features = run(batch)[:len(rows)]
        if out is None:
            out = np.empty((len(images), *features.shape[1:]), np.float32)
        out[rows] = features
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--weights", type=Path, help="the pretrained MobileNetV2 weights file")
    parser.add_argument("--photos", type=int, default=40, dest="count")
    args = parser.parse_args(argv)
    files = sorted(args.photos.glob("*.jpg"))[:args.count]
    bases = {"VGG16@150, random": ConvBase("vgg16", None, 150, 0)}
    if args.weights:
        bases["MobileNetV2@160, pretrained"] = ConvBase("mobilenet_v2", str(args.weights), 160, 0)
    work = Path(tempfile.mkdtemp(prefix="bench-batch-invariance-"))
    rng = np.random.default_rng(0)
    for label, conv in bases.items():
        quantized = work / f"{conv.name}_int8.xml"
        conv_base, preprocess = build_conv_base(conv)
        calibration = image_dataset(files[:8], conv.input_size, 1, preprocess=preprocess)
        save_openvino(quantize(openvino_model(conv_base), calibration, 8), quantized)
        images = next(iter(image_dataset(files, conv.input_size, len(files), preprocess=preprocess))).numpy()
        for engine, precision in COMBINATIONS:
            run, _, _, note = load_engine(conv, engine, precision, quantized, batch_size=32)
            reference = in_batches(run, images, np.arange(len(files)), 32)
            print(f"{label}, {engine} {precision}{f' ({note})' if note else ''}:")
            ordered, shuffled = np.arange(len(files)), rng.permutation(len(files))
            runs = [("again, the same batches", ordered, 32, False),
                    ("shuffled, batches of 32", shuffled, 32, False),
                    ("shuffled, batches of 32, padded", shuffled, 32, True),
                    ("shuffled, batches of 7", shuffled, 7, False),
                    ("one at a time", ordered, 1, False)]
            if engine == "openvino":
                runs += [("compiled for 7, several in flight", shuffled, 7, "streams"),
                         ("LATENCY-compiled for 7", shuffled, 7, "latency")]
            for name, order, size, pad in runs:
                if pad == "streams":  # what extract runs with extract.batch_size: 7
                    sevens, *_ = load_engine(conv, engine, precision, quantized, batch_size=size)
                    batches = [images[order[start:start + size]] for start in range(0, len(order), size)]
                    features = np.empty_like(reference)
                    features[order] = np.concatenate(list(run_batches(sevens, batches)))
                elif pad == "latency":  # how a Ray actor runs it
                    latency, *_ = load_engine(conv, engine, precision, quantized, batch_size=size,
                                              one_batch_at_a_time=True)
                    features = in_batches(latency, images, order, size)
                else:
                    features = in_batches(run, images, order, size, pad)
                same = sum(features[i].tobytes() == reference[i].tobytes() for i in range(len(files)))
                print(f"    {name:34} {same}/{len(files)} the same bytes, largest difference "
                      f"{np.abs(features - reference).max():.2e}", flush=True)


if __name__ == "__main__":
    main()
