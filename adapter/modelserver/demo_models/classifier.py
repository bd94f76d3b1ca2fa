"""The digit classifiers: one small CNN behind two ResNet-style signatures.

``digit_classifier`` takes float32 [N,32,32,3] (0..255, as the adapter
stretches an upload); ``digit_classifier_bytes`` takes the encoded files as a
DT_STRING vector and decodes them in the graph, like the ResNet SavedModel's
``image_bytes`` signature. Both answer ``classes`` (int64) and
``probabilities`` [N,11], class 0 being background (no digit).
"""

from __future__ import annotations

import io

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from adapter.modelserver.demo_models import canvas

INPUT_SIDE = 32
CLASSES = 11  # 0 = background, d + 1 = digit d
DIGIT_SIZES = (16, 128)  # px of the drawn digit before the adapter's resize
BLANK_SHARE = 0.1  # share of training images with no digit (class 0)
JPEG_SHARE = 0.5
JPEG_QUALITIES = (60, 95)
INK_THRESHOLD = 0.2  # coverage above this is ink
CROP_MARGIN = 0.1  # of the ink's longer side, around it
PATCH_SIDE = 28


def _resized(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the adapter sends: maybe a JPEG round trip, then a bilinear stretch to 32x32."""
    picture = Image.fromarray(image)
    if rng.random() < JPEG_SHARE:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=int(rng.integers(*JPEG_QUALITIES)))
        picture = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return np.asarray(picture.resize((INPUT_SIDE, INPUT_SIDE), Image.Resampling.BILINEAR))


def training_images(seed: int, per_digit_sample: int) -> tuple[np.ndarray, np.ndarray]:
    """Render samples 0-1499 ``per_digit_sample`` times each, plus blank paper (class 0)."""
    rng = np.random.default_rng(seed)
    targets = canvas.digits()[1]
    images, labels = [], []
    for index in np.repeat(np.asarray(canvas.TRAIN_INDICES), per_digit_sample):
        size = int(rng.integers(*DIGIT_SIZES))
        images.append(_resized(canvas.render_digit_image(rng, int(index), size), rng))
        labels.append(int(targets[index]) + 1)
    for _ in range(int(len(images) * BLANK_SHARE)):
        side = int(rng.integers(*DIGIT_SIZES))
        paper = np.clip(np.rint(canvas.paper(rng, side, side)), 0, 255).astype(np.uint8)
        images.append(_resized(np.repeat(paper[..., None], 3, axis=2), rng))
        labels.append(0)
    return np.stack(images).astype(np.float32), np.array(labels, np.int64)


def ink_coverage(images: tf.Tensor) -> tf.Tensor:
    """float32 RGB 0..255 [N,32,32,3] -> ink coverage [N,32,32,1]: 0 paper, 1 darkest ink."""
    grey = tf.reduce_mean(images, axis=-1, keepdims=True)
    paper = tf.reduce_max(grey, axis=[1, 2, 3], keepdims=True)  # the lightest pixel is paper
    return tf.clip_by_value(1.0 - grey / tf.maximum(paper, 1.0), 0.0, 1.0)


def centred_ink(images: tf.Tensor) -> tf.Tensor:
    """Crop each image to a square around its ink, resized to PATCH_SIDE (MNIST-style).

    Takes margins and position out of the problem; an image without ink is
    kept whole (and reads as background).
    """
    coverage = ink_coverage(images)
    ink = coverage[..., 0] > INK_THRESHOLD
    side = float(INPUT_SIDE)
    rows = tf.cast(tf.reduce_any(ink, axis=2), tf.float32)  # [N, 32]
    cols = tf.cast(tf.reduce_any(ink, axis=1), tf.float32)
    steps = tf.range(side)

    def extent(hits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        found = tf.reduce_any(hits > 0, axis=1)
        low = tf.reduce_min(tf.where(hits > 0, steps, side), axis=1)
        high = tf.reduce_max(tf.where(hits > 0, steps + 1.0, 0.0), axis=1)
        return tf.where(found, low, 0.0), tf.where(found, high, side)

    (top, bottom), (left, right) = extent(rows), extent(cols)
    half = tf.maximum(bottom - top, right - left) * (0.5 + CROP_MARGIN)
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    boxes = tf.stack([centre_y - half, centre_x - half, centre_y + half, centre_x + half], 1)
    # crop_and_resize samples pixel centres: map edges to centre coordinates.
    boxes = (boxes + tf.constant([0.5, 0.5, -0.5, -0.5])) / (side - 1.0)
    index = tf.range(tf.shape(images)[0])
    return tf.image.crop_and_resize(coverage, boxes, index, [PATCH_SIDE, PATCH_SIDE])


def network(seed: int) -> keras.Model:
    """A small CNN: 32x32 RGB (0..255) -> 11 logits."""
    init = keras.initializers.GlorotUniform(seed=seed)
    images = keras.Input((INPUT_SIDE, INPUT_SIDE, 3), name="images")
    x = keras.layers.Lambda(centred_ink)(images)
    for filters in (32, 64):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer=init
        )(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", kernel_initializer=init)(x)
    x = keras.layers.Dropout(0.3, seed=seed)(x)
    return keras.Model(images, keras.layers.Dense(CLASSES, kernel_initializer=init)(x))


def train(seed: int, *, per_digit_sample: int, epochs: int) -> keras.Model:
    """Fit the classifier on rendered training digits."""
    images, labels = training_images(seed, per_digit_sample)
    model = network(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(images, labels, batch_size=128, epochs=epochs, shuffle=True, verbose=0)
    return model


def _answer(model: keras.Model, images: tf.Tensor) -> dict[str, tf.Tensor]:
    probabilities = tf.nn.softmax(model(images, training=False))
    return {"classes": tf.argmax(probabilities, axis=1), "probabilities": probabilities}


def _decode(data: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    resized = tf.image.resize(image, [INPUT_SIDE, INPUT_SIDE], method="bilinear", antialias=True)
    return tf.cast(resized, tf.float32)


def export(model: keras.Model, tensor_path: str, bytes_path: str) -> None:
    """Write both SavedModels: float32 ``images`` input, and ``image_bytes`` input."""
    float_input = tf.TensorSpec([None, INPUT_SIDE, INPUT_SIDE, 3], tf.float32, name="images")
    bytes_input = tf.TensorSpec([None], tf.string, name="image_bytes")
    for path, spec, fn in (
        (tensor_path, float_input, lambda images: _answer(model, images)),
        (
            bytes_path,
            bytes_input,
            lambda image_bytes: _answer(
                model, tf.map_fn(_decode, image_bytes, fn_output_signature=tf.float32)
            ),
        ),
    ):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", fn, input_signature=[spec])
        archive.write_out(path, verbose=False)
