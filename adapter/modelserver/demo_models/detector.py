"""The digit detector: classical ink-blob proposals plus a small trained patch network.

Graph (all TensorFlow ops, batched, any image size): ink coverage ->
connected components -> one ink box per blob -> a 28x28 patch per blob ->
a CNN that names the digit (or "not a digit", class 0) and regresses where the
drawn digit square lies relative to the ink box, per axis, so the box is right
even when the adapter stretched the image unevenly. Outputs follow the TF
Object Detection API signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from adapter.modelserver.demo_models import ink
from adapter.modelserver.demo_models.training_views import TrainingView

MAX_DETECTIONS = 100  # TF OD API models answer a fixed [N, 100] per output
CLASSES = 11  # 0 = not a digit, d + 1 = digit d
MATCH_SHARE = 0.6  # an ink box belongs to a square holding this share of its area
IGNORE = -1  # label of a stray fragment inside a square: not trained on
BOX_LOSS_WEIGHT = 4.0  # square regression vs. classification in the loss


@tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
def propose(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Return (image index [K], ink box [K,4] ymin,xmin,ymax,xmax px, patches [K,28,28,1])."""
    coverage = ink.ink_coverage(images)
    image, boxes = ink.ink_boxes(coverage)
    return image, boxes, ink.patches(coverage, image, ink.crop_regions(boxes))


@dataclass
class PatchSet:
    """Training patches: pixels, class labels (IGNORE = skip) and square offsets."""

    patches: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray


def square_offsets(ink_box: np.ndarray, square: np.ndarray) -> np.ndarray:
    """Square edges relative to the ink box, per axis: (edge - ink edge) / ink size.

    ``ink_box`` is ymin,xmin,ymax,xmax; ``square`` is x_min,y_min,x_max,y_max.
    Per-axis offsets don't change when an image is stretched unevenly.
    """
    size = np.tile(np.maximum(ink_box[2:] - ink_box[:2], 1.0), 2)
    edges = square[[1, 0, 3, 2]]
    return (edges - ink_box) / size


def apply_offsets(ink_box: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
    """Inverse of :func:`square_offsets` on [K,4] tensors (ymin,xmin,ymax,xmax px)."""
    size = tf.tile(tf.maximum(ink_box[:, 2:] - ink_box[:, :2], 1.0), [1, 2])
    return ink_box + offsets * size


def _label_view(view: TrainingView, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label one view's ink boxes: digit + 1, 0 (paper, scribble) or IGNORE; and offsets."""
    labels = np.zeros(len(boxes), np.int64)
    offsets = np.zeros((len(boxes), 4), np.float32)
    areas = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0), axis=1)
    for square, digit in zip(view.boxes, view.labels, strict=True):
        low = np.maximum(boxes[:, :2], square[[1, 0]])
        high = np.minimum(boxes[:, 2:], square[[3, 2]])
        inside = np.prod(np.clip(high - low, 0.0, None), axis=1) / areas
        members = np.flatnonzero(inside >= MATCH_SHARE)
        if members.size == 0:
            continue
        best = members[np.argmax(areas[members])]  # the digit's main blob
        labels[members] = IGNORE
        labels[best] = digit + 1
        offsets[best] = square_offsets(boxes[best], square)
    return labels, offsets


def patch_set(views: list[TrainingView], batch: int = 32) -> PatchSet:
    """Run the proposal graph over ``views`` and label every proposal."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, len(views), batch):
        chunk = views[start : start + batch]
        image, boxes, patches = (t.numpy() for t in propose(np.stack([v.image for v in chunk])))
        for i, view in enumerate(chunk):
            mine = image == i
            labels, offsets = _label_view(view, boxes[mine])
            parts.append((patches[mine], labels, offsets))
    patches, labels, offsets = (np.concatenate(p) for p in zip(*parts, strict=True))
    keep = labels != IGNORE
    return PatchSet(patches[keep], labels[keep], offsets[keep])


def patch_network(seed: int) -> keras.Model:
    """A small CNN: 28x28 ink patch -> (class logits [11], square offsets [4])."""
    init = keras.initializers.GlorotUniform(seed=seed)
    patch = keras.Input((ink.PATCH_SIDE, ink.PATCH_SIDE, 1), name="patch")
    x = patch
    for filters in (32, 64):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer=init
        )(x)
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer=init
        )(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", kernel_initializer=init)(x)
    x = keras.layers.Dropout(0.3, seed=seed)(x)
    logits = keras.layers.Dense(CLASSES, name="logits", kernel_initializer=init)(x)
    offsets = keras.layers.Dense(4, name="offsets", kernel_initializer=init)(x)
    return keras.Model(patch, [logits, offsets])


def train_patch_network(data: PatchSet, *, seed: int, epochs: int) -> keras.Model:
    """Fit the patch network: cross-entropy on classes, Huber on digits' offsets."""
    model = patch_network(seed)
    is_digit = (data.labels > 0).astype(np.float32)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=[
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            keras.losses.Huber(delta=0.5),
        ],
        loss_weights=[1.0, BOX_LOSS_WEIGHT],
    )
    model.fit(
        data.patches,
        [data.labels, data.offsets],
        sample_weight=[np.ones_like(is_digit), is_digit],
        batch_size=128,
        epochs=epochs,
        shuffle=True,
        verbose=0,
    )
    return model


@dataclass
class Found:
    """Every digit candidate of a batch, before it is sorted into per-image slots.

    ``image`` [K] is the image index; ``boxes`` [K,4] normalized
    ymin,xmin,ymax,xmax squares; ``probabilities`` [K,11] over not-a-digit and
    the ten digits; ``patches`` [K,28,28,1] what the patch network saw;
    ``coverage`` [N,H,W] the images' ink coverage.
    """

    image: tf.Tensor
    boxes: tf.Tensor
    probabilities: tf.Tensor
    patches: tf.Tensor
    coverage: tf.Tensor

    @property
    def scores(self) -> tf.Tensor:
        """[K] the best digit's probability."""
        return tf.reduce_max(self.probabilities[:, 1:], axis=1)

    @property
    def classes(self) -> tf.Tensor:
        """[K] float32 1-based digit class (TF OD API)."""
        return tf.cast(tf.argmax(self.probabilities[:, 1:], axis=1) + 1, tf.float32)


def find(model: keras.Model, images: tf.Tensor) -> Found:
    """Ink blobs of uint8 [N,H,W,3] named and squared by the patch network."""
    coverage = ink.ink_coverage(images)
    image, boxes = ink.ink_boxes(coverage)
    patches = ink.patches(coverage, image, ink.crop_regions(boxes))
    # One blank patch more, dropped after: oneDNN's convolutions reject an
    # empty batch, which is what an image without ink would give.
    padded = tf.concat([patches, tf.zeros([1, ink.PATCH_SIDE, ink.PATCH_SIDE, 1])], 0)
    logits, offsets = (output[:-1] for output in model(padded, training=False))
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    squares = apply_offsets(boxes, offsets) / tf.stack([height, width, height, width])
    return Found(
        image, tf.clip_by_value(squares, 0.0, 1.0), tf.nn.softmax(logits), patches, coverage
    )


def detect(model: keras.Model, images: tf.Tensor) -> dict[str, tf.Tensor]:
    """The serving function: uint8 [N,H,W,3] -> TF OD API outputs, [N, 100] per image."""
    found = find(model, images)
    return per_image(
        tf.shape(images)[0],
        found,
        {
            "detection_boxes": found.boxes,
            "detection_classes": found.classes,
            "detection_scores": found.scores,
        },
    )


def per_image(count: tf.Tensor, found: Found, values: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Scatter per-candidate ``values`` ([K, ...] each) into [N, 100, ...] slots, each
    image's best first, plus ``num_detections``."""
    order = tf.argsort(tf.cast(found.image, tf.float32) * 2.0 - found.scores, stable=True)
    image = tf.gather(found.image, order)
    position = tf.range(tf.size(image))
    first = tf.math.unsorted_segment_min(position, image, count)
    rank = position - tf.gather(first, image)
    keep = rank < MAX_DETECTIONS
    slots = tf.boolean_mask(tf.stack([image, rank], 1), keep)

    def scatter(value: tf.Tensor) -> tf.Tensor:
        kept = tf.boolean_mask(tf.gather(value, order), keep)
        tail = tf.constant(value.shape[1:].as_list(), tf.int32)  # static: [4], [], ...
        return tf.scatter_nd(slots, kept, tf.concat([[count, MAX_DETECTIONS], tail], 0))

    found_count = tf.math.bincount(image, minlength=count, maxlength=count, dtype=tf.int32)
    return {
        **{name: scatter(value) for name, value in values.items()},
        "num_detections": tf.cast(tf.minimum(found_count, MAX_DETECTIONS), tf.float32),
    }


def export_detector(model: keras.Model, path: str) -> None:
    """Write the detector SavedModel with the ``serving_default`` TF OD API signature."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda input_tensor: detect(model, input_tensor),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")],
    )
    archive.write_out(path, verbose=False)
