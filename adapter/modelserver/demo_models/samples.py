"""Write the sample images the README's examples send (held-out digits only).

``python -m adapter.modelserver.demo_models.samples adapter/demo/samples``
writes ``digits.jpg`` (a 1280x720 canvas), ``digits.json`` (where each digit
was drawn, in pixels) and ``seven.png`` (a single held-out 7). Seeded: the
same files every time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from adapter.modelserver.demo_models.canvas import (
    HELD_OUT_INDICES,
    digits,
    make_canvas,
    render_digit_image,
)

SEED = 12  # a canvas with eight digits
CANVAS_SIZE = (1280, 720)
JPEG_QUALITY = 90
SINGLE_DIGIT = 7


def write_samples(out: Path) -> None:
    """Write digits.jpg, digits.json and seven.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    canvas = make_canvas(rng, *CANVAS_SIZE, max_digits=8)
    Image.fromarray(canvas.image).save(out / "digits.jpg", quality=JPEG_QUALITY)
    truth = [
        {
            "label": str(label),
            "box": dict(zip(("x_min", "y_min", "x_max", "y_max"), box, strict=True)),
        }
        for label, box in zip(canvas.labels, canvas.boxes, strict=True)
    ]
    (out / "digits.json").write_text(json.dumps({"digits": truth}, indent=2) + "\n")
    targets = digits()[1]
    seven = next(i for i in HELD_OUT_INDICES if targets[i] == SINGLE_DIGIT)
    Image.fromarray(render_digit_image(rng, seven, size_px=96)).save(out / "seven.png")


def main(argv: list[str] | None = None) -> int:
    """Command line: the output directory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    write_samples(parser.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
