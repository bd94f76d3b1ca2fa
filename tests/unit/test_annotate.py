"""Annotated images: boxes and captions drawn where the results say, on the upright upload."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from adapter import annotate, imaging
from adapter.mapping.classification import Classification
from adapter.mapping.detection import Box, Detection

GREY = (128, 128, 128)
LIMITS = imaging.Limits()
EXIF_ORIENTATION = 0x0112


def solid(width: int, height: int, color: tuple[int, int, int] = GREY) -> np.ndarray:
    return np.full((height, width, 3), color, dtype=np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", orientation: int | None = None) -> bytes:
    image = Image.fromarray(array)
    options: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        options["exif"] = exif
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes, fmt: str) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == fmt
    return np.asarray(image.convert("RGB"))


def detection(
    box: tuple[float, float, float, float], label: str = "5", class_id: int = 6, score: float = 0.9
) -> Detection:
    return Detection(label, class_id, score, Box(*box), Box(0.0, 0.0, 1.0, 1.0))


def drawn_detections(array: np.ndarray, detections: list[Detection]) -> np.ndarray:
    out = annotate.draw_detections(encode(array), detections, "image/png", LIMITS)
    return decode(out, "PNG")


def test_box_edges_are_drawn_where_the_detection_says_and_nothing_far_away_changes() -> None:
    original = solid(200, 120)
    out = drawn_detections(original, [detection((40, 50, 120, 110))])
    assert out.shape == original.shape
    color = annotate.class_color(6)
    for x, y in [(40, 80), (119, 80), (100, 50), (80, 109)]:  # left, right, top, bottom edges
        assert tuple(out[y, x]) == color, (x, y)
    assert tuple(out[80, 80]) == GREY  # the box is an outline, its inside untouched
    # Everything outside the box and the caption band above it is the upload itself.
    changed = np.argwhere((out != original).any(axis=-1))
    assert changed[:, 1].min() >= 40 and changed[:, 1].max() <= 119
    assert changed[:, 0].min() >= 50 - 30 and changed[:, 0].max() <= 109


def test_caption_sits_on_a_label_of_the_class_colour_above_the_box() -> None:
    out = drawn_detections(solid(200, 120), [detection((40, 50, 120, 110))])
    label = np.argwhere((out[:50] == annotate.class_color(6)).all(axis=-1))
    top, left = label.min(axis=0)
    bottom, right = label.max(axis=0)
    assert (left, bottom) == (40, 49)  # flush with the box's left edge, just above its top
    assert 10 <= bottom - top <= 25 and 20 <= right - left <= 79
    inside = out[top : bottom + 1, left : right + 1]
    text = ~(inside == annotate.class_color(6)).all(axis=-1)
    assert text.sum() > 20  # the "5 0.90" glyphs on the label


def test_jpeg_output_is_a_jpeg_of_the_same_size() -> None:
    data = encode(solid(300, 200), "JPEG")
    out = annotate.draw_detections(data, [detection((10, 60, 100, 150))], "image/jpeg", LIMITS)
    pixels = decode(out, "JPEG")
    assert pixels.shape == (200, 300, 3)
    assert np.abs(pixels[100, 10].astype(int) - annotate.class_color(6)).max() < 24
    assert np.abs(pixels[190, 290].astype(int) - GREY).max() < 6


def test_each_class_has_its_own_colour() -> None:
    detections = [
        detection((10, 40, 60, 90), class_id=1),
        detection((80, 40, 130, 90), class_id=2),
        detection((150, 40, 199, 90), class_id=1, score=0.6),
    ]
    out = drawn_detections(solid(200, 100), detections)
    first, second, third = (tuple(out[70, x]) for x in (10, 80, 150))
    assert first == third == annotate.class_color(1)
    assert second == annotate.class_color(2) != first


def test_exif_rotated_jpeg_comes_back_upright_with_the_box_in_the_displayed_frame() -> None:
    stored = solid(160, 100)
    stored[:30, :40] = (220, 30, 30)  # a red patch at the stored top-left
    data = encode(stored, "JPEG", orientation=6)  # shown turned 90 degrees clockwise
    box = (10, 100, 60, 150)  # displayed pixels: bottom-left of the upright 100x160 frame
    out = annotate.draw_detections(data, [detection(box)], "image/png", LIMITS)
    pixels = decode(out, "PNG")
    assert pixels.shape == (160, 100, 3)  # upright: 100 wide, 160 high
    # Turned clockwise, the stored top-left lands at the top-right.
    assert np.abs(pixels[5:25, 75:95].astype(int) - (220, 30, 30)).max() < 40
    assert np.abs(pixels[5:25, 5:25].astype(int) - GREY).max() < 8
    assert tuple(pixels[125, 10]) == annotate.class_color(6)  # the box's left edge
    assert np.abs(pixels[125, 35].astype(int) - GREY).max() < 8  # and its untouched inside


def test_line_width_and_font_grow_with_the_image() -> None:
    def widths(size: int) -> tuple[int, int]:
        """The box line's thickness and the caption label's height, in pixels."""
        quarter = size // 4
        box = (quarter, 2 * quarter, 3 * quarter, 3 * quarter)
        out = drawn_detections(solid(size, size), [detection(box)])
        color = annotate.class_color(6)
        row = (out[5 * size // 8, quarter:] == color).all(axis=-1)
        column = (out[: 2 * quarter, quarter + 1] == color).all(axis=-1)
        return int(np.argmin(row)), int(column.sum())

    small_line, small_label = widths(64)
    large_line, large_label = widths(3000)
    assert small_line == 1 and small_label <= 20
    assert large_line >= 8 and large_label >= 60


def test_caption_of_a_box_at_the_top_right_corner_stays_inside_the_image() -> None:
    box = (150, 0, 200, 60)
    out = drawn_detections(solid(200, 100), [detection(box, label="a long label")])
    color = annotate.class_color(6)
    label_rows = (out[:15] == color).all(axis=-1)
    # No room above: the label goes inside the box, moved left to show all of it.
    assert label_rows[:, :150].any()
    assert label_rows[:, 199].all()


def test_tiny_image_keeps_its_size() -> None:
    out = drawn_detections(solid(28, 28), [detection((2, 2, 26, 26))])
    assert out.shape == (28, 28, 3)
    assert tuple(out[14, 2]) == annotate.class_color(6)


def test_no_detections_give_back_the_upload() -> None:
    original = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    assert np.array_equal(drawn_detections(original, []), original)


def test_classification_panel_covers_the_top_left_and_leaves_the_rest() -> None:
    original = solid(300, 200)
    classifications = [Classification("7", 8, 0.97), Classification("1", 2, 0.02)]
    out = annotate.draw_classifications(encode(original), classifications, "image/png", LIMITS)
    pixels = decode(out, "PNG")
    assert pixels.shape == original.shape
    top_left = (pixels[:30, :60] != GREY).any(axis=-1)
    assert top_left.mean() > 0.5
    # One swatch of the class colour per line, best first.
    swatches = [(pixels[:, :12] == annotate.class_color(c)).all(axis=-1) for c in (8, 2)]
    assert swatches[0].any() and swatches[1].any()
    assert np.argwhere(swatches[0])[:, 0].max() < np.argwhere(swatches[1])[:, 0].min()
    assert np.array_equal(pixels[100:], original[100:])  # the panel stays in the top half
    assert np.array_equal(pixels[:, 150:], original[:, 150:])


def test_classification_panel_on_a_small_image_shows_what_fits() -> None:
    classifications = [Classification(str(d), d + 1, 0.1) for d in range(5)]
    out = annotate.draw_classifications(
        encode(solid(60, 40)), classifications, "image/jpeg", LIMITS
    )
    pixels = decode(out, "JPEG")
    assert pixels.shape == (40, 60, 3)
    assert np.abs(pixels[30:].astype(int) - GREY).max() < 8  # the bottom quarter is clear
    assert np.abs(pixels[:10, :20].astype(int) - GREY).max() > 60  # the best line is there


def test_transparent_png_is_drawn_on_white() -> None:
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    data = encode(rgba)
    out = annotate.draw_detections(data, [], "image/png", LIMITS)
    assert np.array_equal(decode(out, "PNG"), np.full((40, 40, 3), 255, dtype=np.uint8))


def test_bad_images_raise_the_decoder_errors() -> None:
    with pytest.raises(imaging.UnsupportedImage):
        annotate.draw_detections(b"not an image", [], "image/png", LIMITS)
    with pytest.raises(imaging.CorruptImage):
        annotate.draw_classifications(encode(solid(64, 64), "JPEG")[:300], [], "image/png", LIMITS)
    with pytest.raises(imaging.ImageTooLarge):
        small = imaging.Limits(max_pixels=100)
        annotate.draw_detections(encode(solid(64, 64)), [], "image/png", small)


def test_other_media_types_are_refused() -> None:
    with pytest.raises(ValueError, match="media_type"):
        annotate.draw_detections(encode(solid(8, 8)), [], "image/webp", LIMITS)


def test_decode_returns_the_upright_full_size_pixels() -> None:
    stored = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    image = imaging.decode(encode(stored, orientation=8), limits=LIMITS)
    assert (image.width, image.height, image.orientation, image.format) == (30, 50, 8, "png")
    assert np.array_equal(image.array, np.rot90(stored))  # 8: a quarter turn anticlockwise
