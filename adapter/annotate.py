"""Results drawn on the uploaded image, for people who would rather look than read.

The image is decoded again at full size and turned upright by its EXIF
orientation (:func:`adapter.imaging.decode`): exactly the frame the JSON boxes
refer to. Detections get their box and a ``label score`` caption; classifications
a caption panel in the top-left corner. Line width and font size grow with the
image, so a 4000-pixel photo and a 64-pixel digit both read well; every class
has its own colour from a fixed palette, and text sits on a filled background.

Pillow is imported here only: the API imports this module when a client asks
for an image, so workers that never draw never load it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from adapter import imaging
from adapter.mapping.classification import Classification
from adapter.mapping.detection import Box, Detection

__all__ = ["MEDIA_TYPES", "PALETTE", "class_color", "draw_classifications", "draw_detections"]

MEDIA_TYPES = ("image/png", "image/jpeg")
"""What the drawn image can be encoded as."""

JPEG_QUALITY = 90
PNG_COMPRESS_LEVEL = 3  # zlib level: level 6 takes about twice as long for a few % smaller

PALETTE: tuple[tuple[int, int, int], ...] = (
    (243, 195, 0), (135, 86, 146), (243, 132, 0), (161, 202, 241), (190, 0, 50),
    (194, 178, 128), (132, 132, 130), (0, 136, 86), (230, 143, 172), (0, 103, 165),
    (249, 147, 121), (96, 78, 151), (246, 166, 0), (179, 68, 108), (220, 211, 0),
    (136, 45, 23), (141, 182, 0), (101, 69, 34), (226, 88, 34), (43, 61, 38),
)  # fmt: skip
"""Kelly's colours of maximum contrast (less white and black); ``class_id`` picks one."""

PANEL_COLOR = (24, 24, 24)
"""The classification panel's background."""

BASE_FONT_SIZE = 10
"""Smallest font in pixels that an image's size alone picks."""

MIN_FONT_SIZE = 6
"""Smallest font in pixels: captions wider than a small image shrink, down to this."""

_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class _Style:
    """Line width and font size for one image, from its size."""

    line: int
    font_size: int

    @classmethod
    def for_size(cls, width: int, height: int) -> _Style:
        """About 1/300 (line) and 1/40 (font) of the image's geometric-mean side."""
        side = math.sqrt(width * height)
        return cls(line=max(1, round(side / 300)), font_size=max(BASE_FONT_SIZE, round(side / 40)))


def class_color(class_id: int) -> RGB:
    """The palette colour of ``class_id`` (the same for every image)."""
    return PALETTE[class_id % len(PALETTE)]


def draw_detections(
    data: bytes,
    detections: Sequence[Detection],
    media_type: str,
    limits: imaging.Limits,
) -> bytes:
    """Draws each detection's box and ``label score`` caption, encoded as ``media_type``.

    ``media_type`` is one of :data:`MEDIA_TYPES` (``ValueError`` otherwise).
    Boxes are drawn inside their edges, the best-scoring last (on top); a
    caption sits above its box, or inside it at the image's top edge. Bad
    images raise the :class:`adapter.imaging.ImageError` the decoder raises.
    """
    _check_media_type(media_type)
    image = _upright(data, limits)
    style = _Style.for_size(*image.size)
    ordered = sorted(detections, key=lambda detection: detection.score)
    for detection in ordered:
        if detection.mask is not None:
            _tint(image, detection.mask.decode(), class_color(detection.class_id))
    draw = ImageDraw.Draw(image)
    for detection in ordered:
        draw.rectangle(
            _pixel_rect(detection.box, image.size),
            outline=class_color(detection.class_id),
            width=style.line,
        )
    # Captions after every box, so no box line crosses a caption.
    for detection in ordered:
        left, top, _, _ = _pixel_rect(detection.box, image.size)
        text = f"{detection.label} {detection.score:.2f}"
        _caption(draw, text, (left, top), class_color(detection.class_id), style, image.size)
    return _encode(image, media_type)


MASK_OPACITY = 0.45
"""How much of a mask's class colour shows over the picture."""


def _tint(image: Image.Image, mask: Any, color: RGB) -> None:
    """Blend ``color`` translucently into ``image`` where ``mask`` (``[h, w]`` bool) is set."""
    if mask.shape != (image.height, image.width) or not mask.any():
        return
    alpha = Image.fromarray((mask * round(255 * MASK_OPACITY)).astype("uint8"), mode="L")
    image.paste(Image.new("RGB", image.size, color), (0, 0), alpha)


def draw_classifications(
    data: bytes,
    classifications: Sequence[Classification],
    media_type: str,
    limits: imaging.Limits,
) -> bytes:
    """Writes the classifications, best first, in a panel at the top left; see
    :func:`draw_detections` for ``media_type`` and errors.

    One ``label probability`` line each, behind a swatch of the class colour;
    the panel takes at most half the image's height (always at least the best
    line), so the lines that do not fit are left out.
    """
    _check_media_type(media_type)
    image = _upright(data, limits)
    if classifications:
        _panel(ImageDraw.Draw(image), classifications, _Style.for_size(*image.size), image.size)
    return _encode(image, media_type)


def _check_media_type(media_type: str) -> None:
    if media_type not in MEDIA_TYPES:
        raise ValueError(f"media_type must be one of {MEDIA_TYPES}, got {media_type!r}")


def _upright(data: bytes, limits: imaging.Limits) -> Image.Image:
    """The upload at full size, EXIF-oriented, as an RGB Pillow image."""
    return Image.fromarray(imaging.decode(data, limits=limits).array)


def _pixel_rect(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The inclusive pixel rectangle a box's continuous ``[min, max)`` edges cover."""
    width, height = size
    left = min(max(round(box.x_min), 0), width - 1)
    top = min(max(round(box.y_min), 0), height - 1)
    right = min(max(round(box.x_max) - 1, left), width - 1)
    bottom = min(max(round(box.y_max) - 1, top), height - 1)
    return left, top, right, bottom


@lru_cache(maxsize=64)
def _font(size: int) -> Font:
    """Pillow's bundled scalable font at ``size`` pixels."""
    return ImageFont.load_default(size=size)


def _fitting_font(size: int, fits: Callable[[Font], bool]) -> Font:
    """The font of ``size``, or the largest smaller one (down to the minimum) that ``fits``."""
    font = _font(size)
    while size > MIN_FONT_SIZE and not fits(font):
        size -= 1
        font = _font(size)
    return font


def _text_color(background: RGB) -> RGB:
    """Black or white, whichever reads better on ``background`` (Rec. 601 luma)."""
    red, green, blue = background
    return _BLACK if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else _WHITE


def _line_height(font: Font) -> int:
    """Ascent plus descent: the same height for every caption in ``font``."""
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent + descent
    return math.ceil(font.getbbox("Ag")[3])  # Pillow without FreeType: the bitmap font


def _caption(
    draw: ImageDraw.ImageDraw,
    text: str,
    corner: tuple[int, int],
    color: RGB,
    style: _Style,
    size: tuple[int, int],
) -> None:
    """``text`` on a ``color`` label above ``corner`` (below it if no room), inside the image."""
    width, height = size
    pad = max(1, style.font_size // 8)
    font = _fitting_font(style.font_size, lambda font: font.getlength(text) + 2 * pad <= width)
    label_w = math.ceil(font.getlength(text)) + 2 * pad
    label_h = _line_height(font) + 2 * pad
    left, top = corner
    y = top - label_h if top - label_h >= 0 else top
    x = max(0, min(left, width - label_w))
    y = max(0, min(y, height - label_h))
    draw.rectangle((x, y, x + label_w - 1, y + label_h - 1), fill=color)
    draw.text((x + pad, y + pad), text, fill=_text_color(color), font=font)


def _panel(
    draw: ImageDraw.ImageDraw,
    classifications: Sequence[Classification],
    style: _Style,
    size: tuple[int, int],
) -> None:
    """The classification lines on a dark panel at the top left, each behind its swatch."""
    width, height = size
    texts = [f"{c.label} {c.probability:.2f}" for c in classifications]
    pad = max(1, style.font_size // 6)

    def panel_width(font: Font) -> int:
        # pad, a square swatch as high as a line, pad, the widest text, pad.
        text_w = max(math.ceil(font.getlength(text)) for text in texts)
        return 3 * pad + _line_height(font) + text_w

    font = _fitting_font(style.font_size, lambda font: panel_width(font) <= width)
    line_h = _line_height(font)
    room = max(1, (height // 2 - pad) // (line_h + pad))
    shown = list(zip(classifications, texts, strict=True))[:room]
    swatch = line_h
    panel_w = min(width, panel_width(font))
    panel_h = min(height, pad + len(shown) * (line_h + pad))
    draw.rectangle((0, 0, panel_w - 1, panel_h - 1), fill=PANEL_COLOR)
    for row, (classification, text) in enumerate(shown):
        y = pad + row * (line_h + pad)
        color = class_color(classification.class_id)
        draw.rectangle((pad, y, pad + swatch - 1, y + line_h - 1), fill=color)
        draw.text((2 * pad + swatch, y), text, fill=_WHITE, font=font)


def _encode(image: Image.Image, media_type: str) -> bytes:
    """``image`` as PNG or JPEG (quality 90, full-resolution chroma so thin colours stay crisp)."""
    buffer = io.BytesIO()
    if media_type == "image/png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()
