"""tf.Module wrappers that give the trained patch CNN the three demo signatures.

- DigitDetector: TF Object Detection API outputs from uint8 images.
- DigitClassifier: ResNet-style ``classes``/``probabilities`` from float32
  [N,32,32,3] images, or from JPEG/PNG bytes (``image_bytes``).
"""

from __future__ import annotations

import tensorflow as tf

from adapter.modelserver.demo_models import ink

MAX_DETECTIONS = 100  # fixed output length, as the Object Detection API exports
MIN_SCORE = 0.05  # below this a blob is not reported at all (mostly paper noise)
CLASSIFIER_SIDE = 32


def _per_image_slots(image: tf.Tensor, score: tf.Tensor, count: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Order detections by (image, descending score); return that order and [M,2] (image, rank) slots."""
    order = tf.argsort(score, direction="DESCENDING", stable=True)
    order = tf.gather(order, tf.argsort(tf.gather(image, order), stable=True))
    image = tf.gather(image, order)
    position = tf.range(tf.size(image))
    first = tf.math.unsorted_segment_min(position, image, count)
    rank = position - tf.gather(first, image)
    kept = rank < MAX_DETECTIONS
    slots = tf.stack([tf.boolean_mask(image, kept), tf.boolean_mask(rank, kept)], axis=1)
    return tf.boolean_mask(order, kept), slots


class DigitDetector(tf.Module):
    """Finds the digits in uint8 [N,H,W,3] images; Object Detection API output names and shapes."""

    def __init__(self, network: tf.keras.Model) -> None:
        super().__init__()
        self.network = network

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")])
    def detect(self, input_tensor: tf.Tensor) -> dict[str, tf.Tensor]:
        """Return detection_boxes [N,100,4] (normalized ymin,xmin,ymax,xmax), classes, scores, count."""
        image, _, regions, patch = ink.candidates(input_tensor)
        outputs = self.network(patch, training=False)
        digit_probabilities = outputs["probabilities"][:, 1:]
        score = tf.reduce_max(digit_probabilities, axis=1)
        label = tf.cast(tf.argmax(digit_probabilities, axis=1) + 1, tf.float32)
        size = tf.concat([regions[:, 2:] - regions[:, :2]] * 2, 1)
        squares = tf.concat([regions[:, :2]] * 2, 1) + outputs["square"] * size
        shape = tf.cast(tf.shape(input_tensor)[1:3], tf.float32)
        squares = tf.clip_by_value(squares / tf.concat([shape, shape], 0), 0.0, 1.0)
        found = score >= MIN_SCORE
        image, score, label, squares = (tf.boolean_mask(t, found) for t in (image, score, label, squares))
        count = tf.shape(input_tensor)[0]
        order, slots = _per_image_slots(image, score, count)
        out_shape = tf.stack([count, MAX_DETECTIONS])
        return {
            "detection_boxes": tf.scatter_nd(slots, tf.gather(squares, order), tf.concat([out_shape, [4]], 0)),
            "detection_classes": tf.scatter_nd(slots, tf.gather(label, order), out_shape),
            "detection_scores": tf.scatter_nd(slots, tf.gather(score, order), out_shape),
            "num_detections": tf.cast(
                tf.math.unsorted_segment_sum(tf.ones_like(slots[:, 0]), slots[:, 0], count), tf.float32
            ),
        }


class DigitClassifier(tf.Module):
    """Names the one digit in each image: classes int64 [N], probabilities float32 [N,11] (0 = background)."""

    def __init__(self, network: tf.keras.Model) -> None:
        super().__init__()
        self.network = network

    def _classify(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Classify float32 [N,32,32,3] RGB 0..255 images."""
        probabilities = self.network(ink.whole_ink_patches(images), training=False)["probabilities"]
        return {"classes": tf.argmax(probabilities, axis=1), "probabilities": probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None, CLASSIFIER_SIDE, CLASSIFIER_SIDE, 3], tf.float32, name="images")])
    def classify(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Classify float32 [N,32,32,3] RGB images with values 0..255."""
        return self._classify(images)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def classify_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """Decode JPEG/PNG bytes in the graph, resize to 32x32 (stretch), then classify."""

        def decode(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            image.set_shape([None, None, 3])
            return tf.image.resize(image, [CLASSIFIER_SIDE, CLASSIFIER_SIDE], antialias=True)

        images = tf.map_fn(
            decode, image_bytes, fn_output_signature=tf.TensorSpec([CLASSIFIER_SIDE] * 2 + [3], tf.float32)
        )
        return self._classify(images)


def export(module: tf.Module, signature: tf.types.experimental.PolymorphicFunction, path: str) -> None:
    """Write `module` as a SavedModel whose only signature is serving_default."""
    tf.saved_model.save(module, path, signatures={"serving_default": signature})
