"""After the model: YOLO decode and NMS, ours vs. OpenCV and TensorFlow; whole detect requests.

(a) On one thread each (OpenCV and TensorFlow are told so), on a YOLOv8
head's raw output shaped as ultralytics exports it, ``[4 + 80, 8400]``:
most anchors near 0, 30 objects each answered by ~20 overlapping anchors.

1. decode + class-aware NMS (score >= 0.25, IoU 0.45, at most 300 kept):
   - ``ours``: ``adapter.postprocess.YoloHead.decode`` (Rust, on the buffer in place)
   - ``OpenCV``: numpy transpose / argmax / threshold, then
     ``cv2.dnn.NMSBoxesBatched`` (the recipe of ultralytics' OpenCV example,
     class-aware)
   - ``TensorFlow eager``: the same in TF ops, class-aware by offsetting each
     class's boxes, ``tf.image.non_max_suppression``
2. NMS alone, one class, all 8400 boxes (no score threshold: the worst case):
   ``adapter.postprocess.nms`` vs ``cv2.dnn.NMSBoxes`` vs
   ``tf.image.non_max_suppression``

Each row times its contenders round-robin (median of ``--runs``, default
200) and checks they keep the same boxes.

(b) The whole detect request for each demo model format, ``digits.jpg``
(1280x720) as multipart through gunicorn (1 worker) and the local model
server: the batched TF OD API detector, the Detection-Zoo export (each
image at its own size, heavy outputs never asked for), the same with
``?masks=true``, and the YOLO head; and a batch of 4 through the Zoo
export's fixed batch of 1 (four Predicts at once) vs 4 requests.

Usage: ``python bench/postprocess.py [--runs 200] [--quick]``; writes
``bench/results/postprocess.md``, ``postprocess.json`` and ``postprocess.png``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench.*` importable
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import requests  # noqa: E402
import tensorflow as tf  # noqa: E402

from adapter.postprocess import YoloHead, nms  # noqa: E402
from bench import charts  # noqa: E402
from bench.api import (  # noqa: E402
    DIGITS,
    TIMEOUT_S,
    Contender,
    Responses,
    expect_json,
    measure_row,
    running_service,
)
from bench.options import WORK, parse  # noqa: E402
from bench.transport import time_round_robin  # noqa: E402

ANCHORS, CLASSES, OBJECTS = 8400, 80, 30
MIN_SCORE, IOU, MAX_KEPT = 0.25, 0.45, 300
# Row 1 (decode + NMS): ours at least this many times faster.
TARGETS = {"OpenCV": 3.0, "TensorFlow eager": 10.0}
MAX_WH = 4096.0  # the class offset of the TF recipe: larger than any input
ZOO_BATCH = 4

Array = npt.NDArray[Any]
Kept = Array  # [K, 4] corners of the boxes kept, best first


def yolo_output(seed: int) -> Array:
    """``[4 + 80, 8400]`` float32, as a trained head answers an image of 30 objects."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((ANCHORS, 4 + CLASSES), np.float32)
    rows[:, :2] = rng.uniform(0, 640, (ANCHORS, 2))
    rows[:, 2:4] = rng.uniform(8, 200, (ANCHORS, 2))
    rows[:, 4:] = rng.uniform(0, 0.05, (ANCHORS, CLASSES))
    for _ in range(OBJECTS):
        members = rng.choice(ANCHORS, 20, replace=False)
        rows[members, :2] = rng.uniform(50, 590, 2) + rng.normal(0, 4, (20, 2))
        rows[members, 2:4] = rng.uniform(20, 160, 2) * rng.uniform(0.9, 1.1, (20, 2))
        rows[members, 4 + int(rng.integers(CLASSES))] = rng.uniform(0.3, 0.95, 20)
    return np.ascontiguousarray(rows.T)


# --------------------------------------------------------------------------- (a) recipes


HEAD = YoloHead(
    layout="channels_first", classes=CLASSES
)  # built once per model, as the service does


def decode_ours(output: Array) -> Kept:
    kept = HEAD.decode(
        output, input_size=(640, 640), min_score=MIN_SCORE, iou_threshold=IOU, max_results=MAX_KEPT
    )
    return kept.boxes


def decode_opencv(output: Array) -> Kept:
    rows = output.T
    classes = rows[:, 4:].argmax(axis=1)
    scores = rows[np.arange(len(rows)), 4 + classes]
    keep = scores >= MIN_SCORE
    rows, classes, scores = rows[keep], classes[keep], scores[keep]
    xywh = np.concatenate([rows[:, :2] - rows[:, 2:4] / 2, rows[:, 2:4]], axis=1)
    chosen = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, scores, classes, MIN_SCORE, IOU)).reshape(-1)
    chosen = chosen[:MAX_KEPT]
    return np.concatenate([xywh[chosen, :2], xywh[chosen, :2] + xywh[chosen, 2:]], axis=1)


def decode_tensorflow(output: Array) -> Kept:
    rows = tf.transpose(tf.constant(output))
    class_scores = rows[:, 4:]
    scores = tf.reduce_max(class_scores, axis=1)
    classes = tf.argmax(class_scores, axis=1)
    keep = scores >= MIN_SCORE
    rows, scores, classes = (tf.boolean_mask(t, keep) for t in (rows, scores, classes))
    half = rows[:, 2:4] / 2
    corners = tf.concat([rows[:, :2] - half, rows[:, :2] + half], axis=1)
    offset = tf.cast(classes, tf.float32)[:, None] * MAX_WH
    chosen = tf.image.non_max_suppression(corners + offset, scores, MAX_KEPT, iou_threshold=IOU)
    result: Array = tf.gather(corners, chosen).numpy()
    return result


def _candidates(output: Array) -> tuple[Array, Array]:
    """All 8400 anchors' corners and best scores: NMS alone, one class."""
    rows = output.T
    half = rows[:, 2:4] / 2
    corners = np.concatenate([rows[:, :2] - half, rows[:, :2] + half], axis=1)
    return np.ascontiguousarray(corners), rows[:, 4:].max(axis=1)


def nms_ours(boxes: Array, scores: Array) -> Array:
    return nms(boxes, scores, iou_threshold=IOU, max_results=ANCHORS)


def nms_opencv(boxes: Array, scores: Array) -> Array:
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    return np.asarray(cv2.dnn.NMSBoxes(xywh, scores, 0.0, IOU)).reshape(-1)


def nms_tensorflow(boxes: Array, scores: Array) -> Array:
    kept: Array = tf.image.non_max_suppression(boxes, scores, ANCHORS, iou_threshold=IOU).numpy()
    return kept


def _same(ours: Array, theirs: Array, *, indices: bool) -> bool:
    if indices:
        return bool(np.array_equal(ours, theirs))
    # Boxes kept: the same set, in any order (TF's offset recipe may order equal
    # scores differently) and within float rounding (OpenCV goes through x, y, w, h).
    if ours.shape != theirs.shape:
        return False
    order = np.lexsort(ours.T[::-1]), np.lexsort(theirs.T[::-1])
    return bool(np.allclose(ours[order[0]], theirs[order[1]], atol=1e-3))


def measure_kernels(runs: int, warmup: int) -> list[dict[str, Any]]:
    output = yolo_output(0)
    boxes, scores = _candidates(output)
    rows = [
        (
            "1",
            f"decode + class-aware NMS, [{4 + CLASSES}, {ANCHORS}] (score >= {MIN_SCORE})",
            {
                "ours": lambda: decode_ours(output),
                "OpenCV": lambda: decode_opencv(output),
                "TensorFlow eager": lambda: decode_tensorflow(output),
            },
            False,
        ),
        (
            "2",
            f"NMS alone, {ANCHORS} boxes, one class, no score threshold",
            {
                "ours": lambda: nms_ours(boxes, scores),
                "OpenCV": lambda: nms_opencv(boxes, scores),
                "TensorFlow eager": lambda: nms_tensorflow(boxes, scores),
            },
            True,
        ),
    ]
    results = []
    for key, title, calls, indices in rows:
        print(f"row {key}: {title}", flush=True)
        answers = {name: call() for name, call in calls.items()}
        seconds = time_round_robin(calls, runs, warmup)
        medians = {name: statistics.median(s) * 1e3 for name, s in seconds.items()}
        contenders = {}
        for name, ms in medians.items():
            contenders[name] = {
                "ms_median": ms,
                "kept": len(answers[name]),
                "same_as_ours": _same(answers["ours"], answers[name], indices=indices),
                "ours_faster": ms / medians["ours"],
            }
            print(f"  {name:<18} {ms:8.3f} ms  kept {len(answers[name])}", flush=True)
        results.append({"row": key, "title": title, "contenders": contenders})
    return results


# --------------------------------------------------------------------------- (b) requests

FORMATS = [
    ("3", "digits: TF OD API, batched signature, letterbox 320", "/v1/models/digits/detect"),
    (
        "4",
        "digits-zoo: Detection Zoo export, fit 1024, heavy outputs filtered",
        "/v1/models/digits-zoo/detect",
    ),
    (
        "5",
        "digits-masks: Mask R-CNN style, ?masks=true (RLE)",
        "/v1/models/digits-masks/detect?masks=true",
    ),
    ("6", "digits-yolo: YOLO head, letterbox 640, decode + NMS", "/v1/models/digits-yolo/detect"),
]
ZOO_BATCHED = f"digits-zoo, {ZOO_BATCH} images in one request"
ZOO_ONE_BY_ONE = f"digits-zoo, {ZOO_BATCH} requests"


def measure_requests(runs: int, warmup: int) -> list[dict[str, Any]]:
    rows = []
    print("starting the model server and the adapter (gunicorn, 1 worker) ...", flush=True)
    with running_service(WORK / "postprocess-gunicorn.log") as url, requests.Session() as session:
        part = DIGITS.part()
        contenders: dict[str, Contender] = {}
        for _, title, path in FORMATS:
            endpoint = url + path

            def one(endpoint: str = endpoint) -> Responses:
                return [session.post(endpoint, files=[part], timeout=TIMEOUT_S)]

            contenders[title] = Contender(one, expect_json("detections"))
        rows.append(measure_row("3-6", "digits.jpg, one request each", contenders, runs, warmup))
        zoo = url + "/v1/models/digits-zoo/detect"

        def batched() -> Responses:
            return [session.post(zoo, files=[part] * ZOO_BATCH, timeout=TIMEOUT_S)]

        def one_by_one() -> Responses:
            return [session.post(zoo, files=[part], timeout=TIMEOUT_S) for _ in range(ZOO_BATCH)]

        batch = {
            ZOO_BATCHED: Contender(batched, expect_json("detections", ZOO_BATCH)),
            ZOO_ONE_BY_ONE: Contender(one_by_one, expect_json("detections")),
        }
        rows.append(measure_row("7", "a batch through a fixed batch of 1", batch, runs, warmup))
    return rows


# --------------------------------------------------------------------------- report


def _verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return ""
    return f">= {target:g}x: {'yes' if ratio >= target else 'NO'}"


def markdown(
    kernels: list[dict[str, Any]], requests_: list[dict[str, Any]], meta: dict[str, Any]
) -> str:
    lines = [
        "After the model: YOLO decode and NMS on one thread each (median of "
        f"{meta['runs']} runs), and whole detect requests through gunicorn (median of "
        f"{meta['request_runs']}).",
        "",
        "| row | contender | ms (median) | ours faster | target | boxes kept | same as ours |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for row in kernels:
        for name, result in row["contenders"].items():
            if name == "ours":
                cells = ["**ours**", f"{result['ms_median']:.3f}", "", "", str(result["kept"])]
                cells.append("(reference)")
            else:
                ratio = result["ours_faster"]
                same = "yes" if result["same_as_ours"] else "NO"
                cells = [name, f"{result['ms_median']:.3f}", f"{ratio:.1f}x"]
                target = TARGETS.get(name) if row["row"] == "1" else None
                cells += [_verdict(ratio, target), str(result["kept"]), same]
            lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    lines += ["", *(f"Row {row['row']}: {row['title']}." for row in kernels), ""]
    lines += [
        "| row | request | ms (median) | p90 | server: decode / inference / mapping ms"
        " | answer bytes |",
        "|---|---|---:|---:|---|---:|",
    ]
    for row in requests_:
        for name, result in row["contenders"].items():
            if "error" in result:
                lines.append(f"| {row['row']} | {name} | FAILED: {result['error']} | | | |")
                continue
            server = result["server_ms_median"]
            split = " / ".join(
                f"{server.get(k, 0.0):.1f}" for k in ("decode", "inference", "mapping")
            )
            lines.append(
                f"| {row['row']} | {name} | {result['ms_median']:.1f} | {result['ms_p90']:.1f} | "
                f"{split} | {result['response_bytes']:,} |"
            )
    lines += [
        "",
        f"{meta['cpus']} CPUs, {meta['machine']}, Python {meta['python']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def chart(kernels: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> None:
    plt = charts.pyplot()
    fig, axes = plt.subplots(1, len(kernels), figsize=(11, 3.2))
    for ax, row in zip(axes, kernels, strict=True):
        names = list(row["contenders"])
        values = [row["contenders"][n]["ms_median"] for n in names]
        colours = [charts.OURS_COLOUR if n == "ours" else charts.PEER_COLOUR for n in names]
        charts.bars(
            ax,
            names,
            values,
            colours,
            "ms (median, log scale)",
            text=lambda v: f"{v:.2f}",
            log=True,
        )
        ax.set_title(row["title"], fontsize=8)
    note = charts.QUICK_NOTE if meta["quick"] else ""
    charts.finish(fig, axes, f"YOLO decode and NMS, one thread{note}", path)


def main() -> int:
    options = parse(__doc__, runs=(20, 200), runs_help="timed calls per contender")
    cv2.setNumThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    kernels = measure_kernels(options.runs, options.warmup)
    request_runs = max(5, options.runs // 4)
    requests_ = measure_requests(request_runs, options.warmup)
    meta = {
        "runs": options.runs,
        "request_runs": request_runs,
        "quick": options.quick,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("numpy", "opencv-python-headless", "tensorflow")},
    }
    text = markdown(kernels, requests_, meta)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "postprocess.md").write_text(text)
    payload = {"meta": meta, "kernels": kernels, "requests": requests_}
    (out / "postprocess.json").write_text(json.dumps(payload, indent=2) + "\n")
    chart(kernels, meta, out / "postprocess.png")
    print()
    print(text, end="")
    failed = any("error" in r for row in requests_ for r in row["contenders"].values())
    wrong = any(not r["same_as_ours"] for row in kernels for r in row["contenders"].values())
    return 1 if failed or wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
