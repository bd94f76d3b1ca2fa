"""Classical TensorFlow ops that find ink blobs (digit candidates) in uint8 images.

grey -> local paper level (grey closing) -> ink coverage -> threshold ->
connected components (max-pool label propagation in a tf.while_loop, at half
resolution) -> one ink box per component -> a fixed-size patch per box.
Everything works on a whole batch at once and on any image size.
"""

from __future__ import annotations

import tensorflow as tf

INK_THRESHOLD = 0.2  # coverage above this is ink: low enough that no digit breaks apart
PAPER_BLOCK = 4  # px; the paper level is estimated on 4x4 block means
PAPER_RADIUS = 7  # blocks: fills ink up to ~56 px thick, yet fits a 71 px letterbox strip
LINK_RADIUS = 2  # half-res px: ink closer than this joins one component (< the digit gap)
MAX_PROPAGATION_STEPS = 600  # safety cap; a stretched "2" needs ~200
MIN_COMPONENT_PX = 24  # smaller specks are JPEG/noise, never a 32 px digit
PATCH_SIDE = 28  # px of the square patch the patch classifier sees
CROP_MARGIN = 0.15  # of the ink box, on each side, so the patch shows the stroke ends


def _max_pool(images: tf.Tensor, radius: int) -> tf.Tensor:
    """Max over a (2r+1)^2 window, as two 1-D pools (same result, fewer ops)."""
    side = 2 * radius + 1
    rows = tf.nn.max_pool2d(images, [1, side], 1, "SAME")
    return tf.nn.max_pool2d(rows, [side, 1], 1, "SAME")


def ink_coverage(images: tf.Tensor) -> tf.Tensor:
    """Return float32 [N,H,W] ink coverage 0..1 (1 - grey / local paper grey) of uint8 RGB."""
    grey = tf.image.rgb_to_grayscale(tf.cast(images, tf.float32))
    blocks = tf.nn.avg_pool2d(grey, PAPER_BLOCK, PAPER_BLOCK, "SAME")
    # A grey closing (max then min) removes dark strokes but keeps the edge
    # between paper and letterbox padding where it is; nearest upsampling keeps
    # that edge sharp (a blurred one would read as a faint ink line).
    paper = -_max_pool(-_max_pool(blocks, PAPER_RADIUS), PAPER_RADIUS)
    paper = tf.repeat(tf.repeat(paper, PAPER_BLOCK, axis=1), PAPER_BLOCK, axis=2)
    paper = paper[:, : tf.shape(grey)[1], : tf.shape(grey)[2]]
    coverage = 1.0 - grey / tf.maximum(tf.maximum(paper, grey), 1.0)
    return tf.clip_by_value(coverage[..., 0], 0.0, 1.0)


def label_components(ink_half: tf.Tensor) -> tf.Tensor:
    """Label connected ink of bool [N,h,w] with float32 ids unique over the batch (0 = paper)."""
    mask = tf.cast(ink_half, tf.float32)[..., None]
    count = tf.size(mask)
    ids = tf.reshape(tf.range(1, count + 1, dtype=tf.int32), tf.shape(mask))
    # float32 represents ids exactly up to 2**24: batches of < 600 320x320 images.
    labels = tf.cast(ids, tf.float32) * mask

    def spread(step: tf.Tensor, labels: tf.Tensor, changed: tf.Tensor) -> tuple[tf.Tensor, ...]:
        grown = _max_pool(labels, LINK_RADIUS) * mask
        return step + 1, grown, tf.reduce_any(grown != labels)

    _, labels, _ = tf.while_loop(
        lambda step, _, changed: tf.logical_and(changed, step < MAX_PROPAGATION_STEPS),
        spread,
        (tf.constant(0), labels, tf.constant(True)),
    )
    return labels[..., 0]


def ink_boxes(coverage: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Return (image index int32 [K], ink box float32 [K,4] ymin,xmin,ymax,xmax px) per blob."""
    ink = coverage > INK_THRESHOLD
    ink_half = tf.nn.max_pool2d(tf.cast(ink, tf.float32)[..., None], 2, 2, "SAME")[..., 0] > 0
    labels = label_components(ink_half)
    where = tf.where(ink)  # [P, 3] (n, y, x) of every full-res ink pixel
    label = tf.gather_nd(labels, tf.stack([where[:, 0], where[:, 1] // 2, where[:, 2] // 2], 1))
    ids, blob = tf.unique(label)
    blobs = tf.size(ids)
    where = tf.cast(where, tf.int32)
    area = tf.math.unsorted_segment_sum(tf.ones_like(blob), blob, blobs)
    image = tf.math.unsorted_segment_min(where[:, 0], blob, blobs)
    low = tf.math.unsorted_segment_min(where[:, 1:], blob, blobs)
    high = tf.math.unsorted_segment_max(where[:, 1:], blob, blobs) + 1
    keep = area >= MIN_COMPONENT_PX
    boxes = tf.cast(tf.concat([low, high], 1), tf.float32)
    return tf.boolean_mask(image, keep), tf.boolean_mask(boxes, keep)


def crop_regions(boxes: tf.Tensor) -> tf.Tensor:
    """Widen ink boxes [K,4] by CROP_MARGIN per side: the region each patch shows."""
    size = tf.concat([boxes[:, 2:] - boxes[:, :2]] * 2, 1)
    return boxes + CROP_MARGIN * size * tf.constant([-1.0, -1.0, 1.0, 1.0])


def patches(coverage: tf.Tensor, image: tf.Tensor, regions: tf.Tensor) -> tf.Tensor:
    """Sample float32 [K,PATCH_SIDE,PATCH_SIDE,1] coverage patches over regions [K,4] (px edges)."""
    height = tf.cast(tf.shape(coverage)[1], tf.float32)
    width = tf.cast(tf.shape(coverage)[2], tf.float32)
    step = tf.concat([regions[:, 2:] - regions[:, :2]] * 2, 1) / PATCH_SIDE
    # crop_and_resize samples pixel centres from first to last; shift edges to centres.
    centres = regions + step * tf.constant([0.5, 0.5, -0.5, -0.5]) - 0.5
    normalized = centres / tf.stack([height - 1.0, width - 1.0] * 2)
    return tf.image.crop_and_resize(
        coverage[..., None], normalized, image, [PATCH_SIDE, PATCH_SIDE], extrapolation_value=0.0
    )


def candidates(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Return (image index [K], ink box [K,4], crop region [K,4], patch [K,S,S,1]) per ink blob."""
    coverage = ink_coverage(images)
    image, boxes = ink_boxes(coverage)
    regions = crop_regions(boxes)
    return image, boxes, regions, patches(coverage, image, regions)


def whole_ink_patches(images: tf.Tensor) -> tf.Tensor:
    """Return one patch [N,S,S,1] per image, over all its ink (the whole image if it has none)."""
    coverage = ink_coverage(images)
    count = tf.shape(coverage)[0]
    where = tf.cast(tf.where(coverage > INK_THRESHOLD), tf.int32)
    low = tf.math.unsorted_segment_min(where[:, 1:], where[:, 0], count)
    high = tf.math.unsorted_segment_max(where[:, 1:], where[:, 0], count) + 1
    whole = tf.cast(tf.shape(coverage)[1:3], tf.float32)
    blank = tf.reduce_any(high <= low, axis=1, keepdims=True)  # empty segments: min > max
    boxes = tf.cast(tf.concat([low, high], 1), tf.float32)
    boxes = tf.where(blank, tf.concat([tf.zeros(2), whole], 0)[None], boxes)
    regions = crop_regions(boxes)
    return patches(coverage, tf.range(count), regions)
