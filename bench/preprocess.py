"""Preprocessing: encoded image bytes to a model-input array, ours vs. peers.

Every contender is a small function ``bytes -> ndarray`` with the fastest
well-known recipe for its library. All produce the same thing: RGB, the same
output size (stretched, aspect ratio not kept), the same "area" (box) filter,
the same dtype; float rows are normalised with ImageNet mean/std in 0..255
units, ``(v - mean) / std``. Everyone runs on one thread (OpenCV and
TensorFlow are told so). Each row warms every contender up, then times them
round-robin, so load drift hits them alike; the table shows the median.

Rows (inputs from ``bench/photos.py``, cached in ``bench/.work/``):

1. 12 MP (4000x3000) baseline JPEG q90 (~2.8 MB) -> 320x320 uint8
2. the same photo as a progressive JPEG -> 320x320 uint8
3. 1080p (1920x1080) JPEG q90 -> 224x224 float32, normalised
4. 1 MP (1280x800) PNG -> 224x224 uint8
5. row 1 on two threads in one process vs one thread: throughput ratio
   (the GIL must be released while decoding)

Contenders:

- ``ours``: ``adapter.imaging.decode_resize(data, size, filter="area", ...)``
- ``Pillow``: ``Image.open``, ``draft()`` (DCT-domain downscale for JPEG),
  ``resize(size, Image.BOX)``, ``np.asarray``
- ``OpenCV``: ``cv2.imdecode`` with the largest ``IMREAD_REDUCED_COLOR_{2,4,8}``
  that still covers the output, ``cv2.resize(INTER_AREA)``, BGR -> RGB
- ``simplejpeg`` (JPEG rows): ``decode_jpeg(min_width=, min_height=)``
  (DCT-domain downscale), ``cv2.resize(INTER_AREA)``
- ``TensorFlow``: ``tf.io.decode_jpeg(ratio=)`` / ``decode_png``,
  ``tf.image.resize(method="area")`` in a ``tf.function``. TensorFlow is only
  imported after every other measurement is done, so its import (threads,
  hundreds of MB) cannot disturb them.

The last column is each contender's mean absolute difference from our output
in 0..255 levels (float rows are mapped back first): a sanity check that
everyone computes the same thing; above ~5 levels a recipe is wrong.

Usage: ``python bench/preprocess.py [--runs 30] [--quick]``; writes
``bench/results/preprocess.md``, ``preprocess.json`` and ``preprocess.png``.
``--quick`` is a ~30 s smoke run (few runs, numbers not meant to be quoted).
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import platform
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench.photos` importable
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import simplejpeg  # noqa: E402
from PIL import Image  # noqa: E402
from PIL import __version__ as pillow_version  # noqa: E402

from adapter.imaging import decode_resize  # noqa: E402
from bench import charts, photos  # noqa: E402
from bench.options import RESULTS, WORK, parse  # noqa: E402

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
_MEAN = np.array(MEAN, dtype=np.float32)
_STD = np.array(STD, dtype=np.float32)
SUSPECT_DIFF = 5.0  # mean abs diff (levels) above which a recipe is probably wrong
DRIFT_WARNING = 0.15  # ours' two timings of a row further apart than this: load changed

OURS = "ours"
Array = npt.NDArray[Any]
Recipe = Callable[[bytes], Array]


@dataclass(frozen=True)
class Source:
    """An input file: a :func:`bench.photos.photo` encoded one way."""

    width: int
    height: int
    kind: Literal["jpeg", "progressive", "png"]
    seed: int = 1
    quality: int = 90

    @property
    def is_jpeg(self) -> bool:
        return self.kind != "png"

    def filename(self) -> str:
        # The generator's source is part of the name: a changed generator
        # never reuses stale cached files.
        digest = hashlib.sha256(Path(photos.__file__).read_bytes()).hexdigest()[:8]
        ext = "png" if self.kind == "png" else "jpg"
        quality = "" if self.kind == "png" else f"-q{self.quality}"
        return f"{self.width}x{self.height}-s{self.seed}-{self.kind}{quality}-{digest}.{ext}"

    def load(self) -> bytes:
        """The encoded bytes, generated on first use and cached under ``bench/.work/``."""
        path = WORK / self.filename()
        if not path.exists():
            pixels = photos.photo(self.width, self.height, seed=self.seed)
            if self.kind == "png":
                data = photos.png(pixels)
            else:
                data = photos.jpeg(
                    pixels, quality=self.quality, progressive=self.kind == "progressive"
                )
            WORK.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path.read_bytes()


@dataclass(frozen=True)
class Case:
    """One row: an input, the array every contender must produce, our target."""

    key: str
    title: str
    source: Source
    size: tuple[int, int]  # (width, height)
    dtype: Literal["uint8", "float32"]
    target: float  # ours vs. the fastest peer, "x times faster"

    @property
    def normalize(self) -> bool:
        return self.dtype == "float32"


PHOTO_12MP = Source(4000, 3000, "jpeg")
CASES = [
    Case("1", "12 MP JPEG q90 -> 320x320 uint8", PHOTO_12MP, (320, 320), "uint8", 1.1),
    Case(
        "2",
        "12 MP progressive JPEG -> 320x320 uint8",
        replace(PHOTO_12MP, kind="progressive"),  # the same photo
        (320, 320),
        "uint8",
        1.0,
    ),
    Case(
        "3",
        "1080p JPEG q90 -> 224x224 float32, ImageNet-normalised",
        Source(1920, 1080, "jpeg", seed=2),
        (224, 224),
        "float32",
        1.3,
    ),
    Case(
        "4", "1 MP PNG -> 224x224 uint8", Source(1280, 800, "png", seed=3), (224, 224), "uint8", 1.5
    ),
]
THREADS_KEY = "5"
THREADS_TITLE = "row 1 on 2 threads vs 1 thread (throughput)"
THREADS_TARGET = 1.8


# --------------------------------------------------------------------------- recipes


def _normalize(rgb: Array) -> npt.NDArray[np.float32]:
    """``(v - mean) / std`` per channel, float32: how the peers' uint8 output is normalised."""
    out = np.subtract(rgb, _MEAN, dtype=np.float32)
    out /= _STD
    return out


def _finish(case: Case, rgb: Array) -> Array:
    return _normalize(rgb) if case.normalize else rgb


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a JPEG's SOF marker: a few microseconds of header reading."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        (length,) = struct.unpack_from(">H", data, i + 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack_from(">HH", data, i + 5)
            return width, height
        i += 2 + length
    raise ValueError("no JPEG SOF marker found")


def _reduction(data: bytes, size: tuple[int, int]) -> int:
    """The largest libjpeg scale-down (1, 2, 4 or 8) whose result still covers ``size``."""
    width, height = _jpeg_size(data)
    for factor in (8, 4, 2):
        if -(-width // factor) >= size[0] and -(-height // factor) >= size[1]:
            return factor
    return 1


def ours(case: Case) -> Recipe:
    """The adapter: decode, scale and normalise in one call into the Rust extension."""
    size = case.size
    if case.normalize:
        return lambda data: decode_resize(
            data, size, resize="stretch", filter="area", dtype="float32", mean=MEAN, std=STD
        )
    return lambda data: decode_resize(data, size, resize="stretch", filter="area", dtype="uint8")


def pillow(case: Case) -> Recipe:
    """Pillow: ``draft`` picks the largest DCT scale-down that still covers the output."""
    size = case.size

    def run(data: bytes) -> Array:
        im: Image.Image = Image.open(io.BytesIO(data))
        if im.format == "JPEG":
            im.draft("RGB", size)
        if im.mode != "RGB":
            im = im.convert("RGB")
        return _finish(case, np.asarray(im.resize(size, Image.Resampling.BOX)))

    return run


_CV2_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def opencv(case: Case) -> Recipe:
    """OpenCV: reduced JPEG decode, INTER_AREA, then BGR -> RGB on the small output."""
    size, is_jpeg = case.size, case.source.is_jpeg

    def run(data: bytes) -> Array:
        flag = _CV2_REDUCED[_reduction(data, size)] if is_jpeg else cv2.IMREAD_COLOR
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if bgr is None:
            raise ValueError("cv2.imdecode could not decode the image")
        small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        return _finish(case, cv2.cvtColor(small, cv2.COLOR_BGR2RGB))

    return run


def simplejpeg_cv2(case: Case) -> Recipe | None:
    """simplejpeg (libjpeg-turbo, DCT scale-down to at least the output), then OpenCV INTER_AREA."""
    if not case.source.is_jpeg:
        return None
    width, height = case.size

    def run(data: bytes) -> Array:
        rgb = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=width, min_height=height)
        return _finish(case, cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))

    return run


def _import_tensorflow() -> Any:
    """Imports TensorFlow quietly and pins it to one thread, before it runs any op."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def tensorflow(case: Case, tf: Any) -> Recipe:
    """TensorFlow: ``decode_jpeg(ratio=)`` or ``decode_png``, resize "area", in a graph."""
    width, height = case.size
    mean = tf.constant(MEAN, tf.float32)
    std = tf.constant(STD, tf.float32)
    spec = [tf.TensorSpec([], tf.string)]

    def graph(ratio: int) -> Any:
        def run(data: Any) -> Any:
            if case.source.is_jpeg:
                image = tf.io.decode_jpeg(data, channels=3, ratio=ratio)
            else:
                image = tf.io.decode_png(data, channels=3)
            resized = tf.image.resize(image, (height, width), method="area")
            if case.normalize:
                return (resized - mean) / std
            return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

        return tf.function(run, input_signature=spec)

    graphs = {ratio: graph(ratio) for ratio in ((1, 2, 4, 8) if case.source.is_jpeg else (1,))}

    def run(data: bytes) -> Array:
        ratio = _reduction(data, case.size) if case.source.is_jpeg else 1
        result: Array = graphs[ratio](data).numpy()
        return result

    return run


PEERS: dict[str, Callable[[Case], Recipe | None]] = {
    "Pillow": pillow,
    "OpenCV": opencv,
    "simplejpeg+OpenCV": simplejpeg_cv2,
}
TENSORFLOW = "TensorFlow"


# --------------------------------------------------------------------------- timing


def _time_round_robin(
    recipes: dict[str, Recipe], data: bytes, runs: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per call of every recipe: ``runs`` rounds, each calling every recipe once.

    The order rotates each round, so every recipe takes every position in turn.
    The garbage collector is off while timing, as in ``timeit``.
    """
    for recipe in recipes.values():
        for _ in range(warmup):
            recipe(data)
    names = list(recipes)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()
    try:
        for round_ in range(runs):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                recipe = recipes[name]
                start = time.perf_counter()
                recipe(data)
                samples[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return samples


def _wall_time(recipe: Recipe, data: bytes, threads: int, per_thread: int) -> float:
    """Wall seconds for ``threads`` threads to call ``recipe`` ``per_thread`` times each.

    The clock starts when every thread is ready, so thread creation is not counted.
    """
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            recipe(data)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def _thread_scaling(recipe: Recipe, data: bytes, repeats: int, per_thread: int) -> dict[str, float]:
    """Median wall times of 1 and 2 threads doing ``per_thread`` calls each, alternated."""
    recipe(data)
    one, two = [], []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            one.append(_wall_time(recipe, data, 1, per_thread))
            two.append(_wall_time(recipe, data, 2, per_thread))
    finally:
        gc.enable()
    t1, t2 = statistics.median(one), statistics.median(two)
    return {
        "ms_per_image_1_thread": t1 / per_thread * 1000,
        "ms_per_image_2_threads": t2 / (2 * per_thread) * 1000,
        "throughput_ratio": 2 * t1 / t2,
    }


def _levels(case: Case, array: Array) -> npt.NDArray[np.float64]:
    """An output in 0..255 levels (float rows are de-normalised), for comparison."""
    values = array.astype(np.float64)
    return values * _STD + _MEAN if case.normalize else values


def _check(case: Case, name: str, array: Array) -> None:
    want = (case.size[1], case.size[0], 3)
    if array.shape != want or array.dtype != np.dtype(case.dtype):
        raise SystemExit(
            f"row {case.key}: {name} gave {array.dtype} {array.shape}, want {case.dtype} {want}"
        )


def measure_case(
    case: Case, recipes: dict[str, Recipe], runs: int, warmup: int, reference: Array
) -> dict[str, dict[str, float]]:
    """Times ``recipes`` on ``case`` and compares each output with ``reference`` (ours)."""
    data = case.source.load()
    samples = _time_round_robin(recipes, data, runs, warmup)
    results = {}
    for name, recipe in recipes.items():
        output = recipe(data)
        _check(case, name, output)
        diff = float(np.abs(_levels(case, output) - _levels(case, reference)).mean())
        ms = [s * 1000 for s in samples[name]]
        quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
        results[name] = {
            "ms_median": statistics.median(ms),
            "ms_min": min(ms),
            "ms_q1": quartiles[0],
            "ms_q3": quartiles[2],
            "mean_abs_diff": diff,
        }
        print(
            f"  row {case.key} {name:<18} {results[name]['ms_median']:8.2f} ms   diff {diff:5.2f}",
            flush=True,
        )
    return results


# --------------------------------------------------------------------------- report


def summarize(
    case: Case, contenders: dict[str, dict[str, float]], ours_tf_phase_ms: float
) -> dict[str, Any]:
    """One row's JSON: every contender, the fastest peer, our speed-up and the target.

    Each peer's ``ours_speedup`` (its time / ours) uses ours as timed in the same
    round-robin, so TensorFlow's is paired with ours' second timing: under a steady
    load that changes nothing, under a drifting one it keeps the ratio honest.
    """
    ours_ms = contenders[OURS]["ms_median"]
    for name, result in contenders.items():
        if name != OURS:
            paired = ours_tf_phase_ms if name == TENSORFLOW else ours_ms
            result["ours_speedup"] = result["ms_median"] / paired
    peers = {name: r["ours_speedup"] for name, r in contenders.items() if name != OURS}
    fastest = min(peers, key=peers.__getitem__)
    speedup = peers[fastest]
    return {
        "row": case.key,
        "title": case.title,
        "input": {
            "file": case.source.filename(),
            "bytes": len(case.source.load()),
            "width": case.source.width,
            "height": case.source.height,
            "kind": case.source.kind,
        },
        "output": {"width": case.size[0], "height": case.size[1], "dtype": case.dtype},
        "contenders": contenders,
        "fastest_peer": fastest,
        "ours_vs_fastest_peer": speedup,
        "target": case.target,
        "met": speedup >= case.target,
        # Ours again, timed next to TensorFlow: far from "ms_median" = the load changed.
        "ours_ms_median_tensorflow_phase": ours_tf_phase_ms,
    }


def _faster(ratio: float) -> str:
    """``ratio`` (their time / our time) in words: "1.32x faster", "0.50x (2.00x slower)"."""
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{ratio:.2f}x ({1 / ratio:.2f}x slower)"


def markdown(rows: list[dict[str, Any]], threads: dict[str, Any], meta: dict[str, Any]) -> str:
    quick = " (--quick: a smoke run, not for quoting)" if meta["quick"] else ""
    lines = [
        f"Preprocessing, encoded bytes to a model-input array: median of {meta['runs']} runs "
        f"per contender after a warm-up, one thread each{quick}.",
        "",
        "Rows:",
        "",
    ]
    for row in rows:
        size_mb = row["input"]["bytes"] / 1e6
        lines.append(f"{row['row']}. {row['title']} (input {size_mb:.2f} MB)")
    lines += [
        f"{THREADS_KEY}. {THREADS_TITLE}",
        "",
        "| row | contender | ms (median) | speed | target | met | mean abs diff vs ours |",
        "|---|---|---:|---|---:|---|---:|",
    ]
    for row in rows:
        for name, result in row["contenders"].items():
            ms = result["ms_median"]
            if name == OURS:
                speed = (
                    f"**ours vs fastest peer ({row['fastest_peer']}): "
                    f"{_faster(row['ours_vs_fastest_peer'])}**"
                )
                target = f">= {row['target']:.2f}x"
                met = "yes" if row["met"] else "**NO**"
                diff = "(reference)"
                label = f"**{OURS}**"
            else:
                speed = f"ours {_faster(result['ours_speedup'])}"
                target = met = ""
                diff = f"{result['mean_abs_diff']:.2f}"
                if result["mean_abs_diff"] > SUSPECT_DIFF:
                    diff += " (suspect)"
                label = name
            lines.append(
                f"| {row['row']} | {label} | {ms:.2f} | {speed} | {target} | {met} | {diff} |"
            )
    for name, result in threads["contenders"].items():
        ratio = result["throughput_ratio"]
        is_ours = name == OURS
        lines.append(
            f"| {THREADS_KEY} | {f'**{name}**' if is_ours else name} "
            f"| {result['ms_per_image_1_thread']:.2f} -> {result['ms_per_image_2_threads']:.2f} "
            f"| {'**' if is_ours else ''}2 threads: {ratio:.2f}x the throughput of 1"
            f"{'**' if is_ours else ''} "
            f"| {f'>= {THREADS_TARGET:.2f}x' if is_ours else ''} "
            f"| {('yes' if ratio >= THREADS_TARGET else '**NO**') if is_ours else ''} | |"
        )
    drifted = [
        f"row {row['row']} {row['contenders'][OURS]['ms_median']:.2f} ms -> "
        f"{row['ours_ms_median_tensorflow_phase']:.2f} ms"
        for row in rows
        if abs(row["ours_ms_median_tensorflow_phase"] / row["contenders"][OURS]["ms_median"] - 1)
        > DRIFT_WARNING
    ]
    if drifted:
        lines += [
            "",
            f"**Load changed between phases**: ours, timed again next to TensorFlow, moved by "
            f"more than {DRIFT_WARNING:.0%} ({'; '.join(drifted)}), so TensorFlow's lines "
            f"are not comparable with the others. Re-run on a quiet machine.",
        ]
    lines += [
        "",
        f"TensorFlow is timed last, after every other contender, with ours timed again "
        f"alongside it to check for load drift. "
        f"Row {THREADS_KEY}'s ms are per image, 1 thread -> 2 threads "
        f"({threads['per_thread']} images per thread, median of {threads['repeats']}); "
        f"{meta['cpus']} CPUs. Mean abs diff is in 0..255 levels "
        f"(float rows mapped back from normalised values).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def chart(
    rows: list[dict[str, Any]], threads: dict[str, Any], meta: dict[str, Any], path: Path
) -> None:
    """A bar chart per row (ms per image, ours highlighted) on a 2x3 grid, written to ``path``."""
    fig, grid = charts.pyplot().subplots(2, 3, figsize=(15, 7.5))
    axes = list(grid.flat)
    for ax, row in zip(axes, rows, strict=False):
        names = list(row["contenders"])
        values = [row["contenders"][n]["ms_median"] for n in names]
        colours = [charts.OURS_COLOUR if n == OURS else charts.PEER_COLOUR for n in names]
        charts.bars(ax, names, values, colours, "ms per image (lower is better)")
        ax.set_title(
            f"{row['row']}. {row['title']}\nours vs {row['fastest_peer']}: "
            f"{_faster(row['ours_vs_fastest_peer'])} (target {row['target']:.1f}x)",
            fontsize=8,
        )
    ax = axes[len(rows)]
    labels, values, colours = [], [], []
    for name, result in threads["contenders"].items():
        for n, key in ((1, "ms_per_image_1_thread"), (2, "ms_per_image_2_threads")):
            labels.append(f"{name}, {n} thread{'s' if n > 1 else ''}")
            values.append(result[key])
            colours.append(charts.OURS_COLOUR if name == OURS else charts.PEER_COLOUR)
    charts.bars(ax, labels, values, colours, "ms per image, wall clock (lower is better)")
    ratio = threads["contenders"][OURS]["throughput_ratio"]
    ax.set_title(
        f"{THREADS_KEY}. {THREADS_TITLE}\nours: 2 threads {ratio:.2f}x the throughput "
        f"(target {THREADS_TARGET:.1f}x)",
        fontsize=8,
    )
    for ax in axes[len(rows) + 1 :]:
        ax.axis("off")
    quick = charts.QUICK_NOTE if meta["quick"] else ""
    title = (
        f"Image bytes -> model input, one thread each, median of {meta['runs']} runs "
        f"(orange: ours, grey: peers{quick})"
    )
    charts.finish(fig, axes, title, path)


# --------------------------------------------------------------------------- main


def main() -> int:
    """Measure every row, then TensorFlow on every row, then write the results."""
    options = parse(
        __doc__, runs=(5, 30), runs_help="timed runs per contender", quick_help="a ~30 s smoke run"
    )
    runs, warmup = options.runs, options.warmup
    per_thread, repeats = (4, 3) if options.quick else (12, 5)

    cv2.setNumThreads(1)
    print("inputs:", flush=True)
    for case in CASES:
        data = case.source.load()
        print(f"  {case.source.filename()}: {len(data) / 1e6:.2f} MB", flush=True)

    references: dict[str, Array] = {}
    measured: dict[str, dict[str, dict[str, float]]] = {}
    for case in CASES:
        print(f"row {case.key}: {case.title}", flush=True)
        recipes: dict[str, Recipe] = {OURS: ours(case)}
        for name, make in PEERS.items():
            recipe = make(case)
            if recipe is not None:
                recipes[name] = recipe
        references[case.key] = recipes[OURS](case.source.load())
        _check(case, OURS, references[case.key])
        measured[case.key] = measure_case(case, recipes, runs, warmup, references[case.key])

    print(f"row {THREADS_KEY}: {THREADS_TITLE}", flush=True)
    row1 = CASES[0]
    threads_results = {}
    for name, recipe in ((OURS, ours(row1)), ("Pillow", pillow(row1))):
        threads_results[name] = _thread_scaling(recipe, row1.source.load(), repeats, per_thread)
        print(f"  {name}: {threads_results[name]}", flush=True)

    # TensorFlow last: importing it starts thread pools and maps hundreds of MB.
    print("TensorFlow (imported now, after everything else):", flush=True)
    # Ours runs again alongside it, only to detect load drift between the phases.
    tf = _import_tensorflow()
    ours_again: dict[str, float] = {}
    for case in CASES:
        recipes = {OURS: ours(case), TENSORFLOW: tensorflow(case, tf)}
        again = measure_case(case, recipes, runs, warmup, references[case.key])
        measured[case.key][TENSORFLOW] = again[TENSORFLOW]
        ours_again[case.key] = again[OURS]["ms_median"]

    rows = [summarize(case, measured[case.key], ours_again[case.key]) for case in CASES]
    threads = {
        "row": THREADS_KEY,
        "title": THREADS_TITLE,
        "per_thread": per_thread,
        "repeats": repeats,
        "target": THREADS_TARGET,
        "met": threads_results[OURS]["throughput_ratio"] >= THREADS_TARGET,
        "contenders": threads_results,
    }
    meta = {
        "runs": runs,
        "warmup": warmup,
        "quick": options.quick,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "Pillow": pillow_version,
            "opencv": cv2.__version__,
            "simplejpeg": simplejpeg.__version__,
            "tensorflow": tf.__version__,
        },
    }
    text = markdown(rows, threads, meta)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preprocess.md").write_text(text)
    payload = {"meta": meta, "rows": rows, "threads": threads}
    (RESULTS / "preprocess.json").write_text(json.dumps(payload, indent=2) + "\n")
    chart(rows, threads, meta, RESULTS / "preprocess.png")
    print()
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
