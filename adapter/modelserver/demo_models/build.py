"""Build the demo SavedModels (seeded, cached): ``tfs-adapter build-demo-models``.

Writes TF Serving's layout, ``<out>/<model>/1/saved_model.pb``, for
``digit_detector``, ``digit_classifier`` and ``digit_classifier_bytes``, and
the same two networks in the signatures of real exporters (:mod:`exports`:
Detection Zoo, Mask R-CNN, YOLO, Keras, multi-label), from scikit-learn's
``load_digits()`` samples 0-1499 only. A stamp holding a hash of
this package's sources, the seed and the TensorFlow version makes a second
run a no-op; models are built aside and renamed into place, so an interrupted
build never leaves a half-written model.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tqdm import tqdm

from adapter.modelserver.demo_models.exports import MODELS as EXPORTS

MODELS = ("digit_detector", "digit_classifier", "digit_classifier_bytes", *EXPORTS)
VERSION = "1"
STAMP = ".build-stamp"
# The modules whose code decides the models' weights (samples.py does not).
SOURCES = (
    "build.py", "canvas.py", "training_views.py", "evaluation.py",
    "ink.py", "detector.py", "classifier.py", "exports.py",
)  # fmt: skip
DETECTOR_VIEWS = 2000  # training canvases for the detector's patch network
DETECTOR_EPOCHS = 12
CLASSIFIER_RENDERINGS = 6  # renderings of each training sample
CLASSIFIER_EPOCHS = 12


def source_hash(seed: int) -> str:
    """Hash of everything that decides the models: this package's code, the seed, TF."""
    import tensorflow as tf

    digest = hashlib.sha256(f"seed={seed} tf={tf.__version__}".encode())
    for name in SOURCES:
        path = Path(__file__).with_name(name)
        digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()


def is_current(out: Path, stamp: str) -> bool:
    """True when ``out`` holds every model, built from the same sources and seed."""
    stamp_file = out / STAMP
    return (
        stamp_file.is_file()
        and stamp_file.read_text().strip() == stamp
        and all((out / name / VERSION / "saved_model.pb").is_file() for name in MODELS)
    )


def _train_and_export(staging: Path, seed: int, progress: tqdm) -> None:
    import keras
    import tensorflow as tf

    from adapter.modelserver.demo_models import classifier, detector, exports, training_views

    keras.utils.set_random_seed(seed)
    # Deterministic kernels: every machine builds the very same models.
    tf.config.experimental.enable_op_determinism()
    progress.set_description("drawing detector training canvases")
    views = training_views.training_views(seed, DETECTOR_VIEWS)
    progress.update()
    progress.set_description("proposing ink blobs")
    patches = detector.patch_set(views)
    progress.update()
    progress.set_description("training the detector's patch network")
    patch_network = detector.train_patch_network(patches, seed=seed, epochs=DETECTOR_EPOCHS)
    detector.export_detector(patch_network, str(staging / "digit_detector" / VERSION))
    progress.update()
    progress.set_description("training the digit classifier")
    digit_network = classifier.train(
        seed, per_digit_sample=CLASSIFIER_RENDERINGS, epochs=CLASSIFIER_EPOCHS
    )
    progress.update()
    progress.set_description("exporting the classifiers")
    classifier.export(
        digit_network,
        str(staging / "digit_classifier" / VERSION),
        str(staging / "digit_classifier_bytes" / VERSION),
    )
    progress.update()
    progress.set_description("exporting the Zoo, Mask R-CNN, YOLO and Keras-style models")
    exports.export_all(patch_network, digit_network, staging)
    progress.update()


def build_demo_models(out: Path, *, seed: int = 0, force: bool = False) -> bool:
    """Build the demo models into ``out``; False if the cache was current."""
    stamp = source_hash(seed)
    if not force and is_current(out, stamp):
        print(f"demo models in {out} are up to date (cached)", flush=True)
        return False
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    started = time.monotonic()
    try:
        with tqdm(total=6, unit="step", file=sys.stdout) as progress:
            _train_and_export(staging, seed, progress)
        (out / STAMP).unlink(missing_ok=True)
        for name in MODELS:
            shutil.rmtree(out / name, ignore_errors=True)
            (staging / name).rename(out / name)
        (out / STAMP).write_text(stamp + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"built {', '.join(MODELS)} in {out} ({time.monotonic() - started:.0f} s)", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--out DIR`` (var/models), ``--seed N`` (0), ``--force``."""
    parser = argparse.ArgumentParser(prog="tfs-adapter build-demo-models", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("var/models"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    build_demo_models(args.out, seed=args.seed, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
