"""The small CNN that names each ink patch (background or a digit) and places its drawn square.

Its training patches come from the very graph the SavedModels run
(:func:`ink.candidates` on training views, :func:`ink.whole_ink_patches` on
single-digit images), so training and serving see the same inputs.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from adapter.modelserver.demo_models import canvas as canvases
from adapter.modelserver.demo_models import evaluation, ink
from adapter.modelserver.demo_models.training_views import TrainingView

CLASSES = 11  # 0 = background, digit d = d + 1 (the ResNet signature's convention)
CONTAINMENT = 0.6  # share of an ink box inside a drawn square for it to be that digit
PROPOSAL_BATCH = 32  # views per run of the proposal graph
CLASSIFIER_SIDE = 32  # the digit_classifier input side
SQUARE_LOSS_WEIGHT = 2.0  # offsets err by ~0.02 of a patch; weighs them like the class loss
BATCH_SIZE = 128
LEARNING_RATE = 2e-3


def _proposals(images: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run ink.candidates over uint8 views in batches; image indices are global."""
    propose = tf.function(ink.candidates, reduce_retracing=True)
    parts = []
    for start in range(0, len(images), PROPOSAL_BATCH):
        image, boxes, regions, patch = propose(tf.constant(images[start : start + PROPOSAL_BATCH]))
        parts.append((image.numpy() + start, boxes.numpy(), regions.numpy(), patch.numpy()))
    return tuple(np.concatenate(column) for column in zip(*parts))


def _square_targets(squares_xy: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Express (x_min,y_min,x_max,y_max) squares in the frame of (ymin,xmin,ymax,xmax) regions."""
    squares = squares_xy[:, [1, 0, 3, 2]]
    size = np.tile(regions[:, 2:] - regions[:, :2], 2)
    return (squares - np.tile(regions[:, :2], 2)) / size


def label_view(view: TrainingView, boxes: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (class [K], square target [K,4], NaN for background) of one view's candidates.

    A candidate is a digit when most of its ink lies in a drawn square; when a
    digit broke into pieces, only the largest piece is that digit.
    """
    classes = np.zeros(len(boxes), np.int64)
    targets = np.full((len(boxes), 4), np.nan, np.float32)
    ink_xy = boxes[:, [1, 0, 3, 2]]
    areas = np.prod(ink_xy[:, 2:] - ink_xy[:, :2], axis=1)
    for square, digit in zip(view.boxes, view.labels):
        low = np.maximum(ink_xy[:, :2], square[:2])
        high = np.minimum(ink_xy[:, 2:], square[2:])
        inside = np.prod(np.clip(high - low, 0, None), axis=1) / np.maximum(areas, 1.0)
        pieces = np.flatnonzero(inside >= CONTAINMENT)
        if pieces.size:
            best = pieces[np.argmax(areas[pieces])]
            classes[best] = digit + 1
            targets[best] = _square_targets(square[None], regions[best : best + 1])[0]
    return classes, targets


def detector_patches(views: list[TrainingView]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (patches, classes, square targets) of every candidate in the views."""
    image, boxes, regions, patch = _proposals(np.stack([v.image for v in views]))
    classes, targets = [], []
    order = np.argsort(image, kind="stable")
    image, boxes, regions, patch = image[order], boxes[order], regions[order], patch[order]
    starts = np.searchsorted(image, np.arange(len(views) + 1))
    for index, view in enumerate(views):
        own = slice(starts[index], starts[index + 1])
        view_classes, view_targets = label_view(view, boxes[own], regions[own])
        classes.append(view_classes)
        targets.append(view_targets)
    return patch, np.concatenate(classes), np.concatenate(targets)


def classifier_image(rng: np.random.Generator, index: int) -> np.ndarray:
    """Render one digit as an upload would be, stretched to 32x32 by the adapter, maybe JPEG'd."""
    image = canvases.render_digit_image(rng, index, int(rng.integers(24, 97)))
    if rng.random() < 0.5:
        image = evaluation.decode(evaluation.encode(image, "jpeg", int(rng.integers(60, 96))))
    return np.asarray(evaluation.stretch(image, CLASSIFIER_SIDE).image, np.float32)


def classifier_patches(seed: int, copies: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (patches, classes) of `copies` renderings of every training digit, plus blank paper."""
    rng = np.random.default_rng(seed)
    indices = np.repeat(np.asarray(canvases.TRAIN_INDICES), copies)
    images = [classifier_image(rng, int(i)) for i in indices]
    blanks = [canvases.paper(rng, CLASSIFIER_SIDE, CLASSIFIER_SIDE) for _ in range(len(indices) // 50)]
    images += [np.repeat(b[..., None], 3, axis=2).astype(np.float32) for b in blanks]
    patch = tf.function(ink.whole_ink_patches)(tf.constant(np.stack(images))).numpy()
    classes = np.concatenate([canvases.digits()[1][indices] + 1, np.zeros(len(blanks), np.int64)])
    return patch, classes


def patch_network() -> tf.keras.Model:
    """Build the patch CNN: [K,S,S,1] coverage -> probabilities [K,11] and square offsets [K,4]."""
    layers = tf.keras.layers
    inputs = tf.keras.Input((ink.PATCH_SIDE, ink.PATCH_SIDE, 1), name="patch")
    x = inputs
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
    probabilities = layers.Dense(CLASSES, activation="softmax", name="probabilities")(x)
    square = layers.Dense(4, name="square")(x)
    return tf.keras.Model(inputs, {"probabilities": probabilities, "square": square})


def masked_l1(targets: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Mean absolute error over rows whose targets are known (background rows hold NaN)."""
    known = tf.math.is_finite(targets[:, 0])
    error = tf.reduce_mean(tf.abs(tf.where(known[:, None], targets, predicted) - predicted), axis=1)
    return tf.where(known, error, 0.0)


def train(patches: np.ndarray, classes: np.ndarray, targets: np.ndarray, epochs: int, seed: int) -> tf.keras.Model:
    """Fit the patch CNN (seeded) on labelled patches; returns the trained model."""
    tf.keras.utils.set_random_seed(seed)
    model = patch_network()
    steps = epochs * -(-len(patches) // BATCH_SIZE)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)),
        loss={"probabilities": "sparse_categorical_crossentropy", "square": masked_l1},
        loss_weights={"probabilities": 1.0, "square": SQUARE_LOSS_WEIGHT},
    )
    model.fit(
        patches,
        {"probabilities": classes, "square": targets},
        batch_size=BATCH_SIZE,
        epochs=epochs,
        shuffle=True,
        verbose=2,
    )
    return model
