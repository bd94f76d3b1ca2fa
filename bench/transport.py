"""Transport to TF Serving: our gRPC path vs. TensorFlow's protos and the REST API.

Two parts, in one run:

**(a) Building a request** (client CPU only, no network): a PredictRequest for
one tensor, serialized to bytes, median µs.

- ``ours``: ``adapter.serving.codec.to_tensor_proto(array)`` into the
  adapter's own ``adapter.tfs`` ``PredictRequest``, ``SerializeToString()``
- ``TensorFlow``: ``tf.make_tensor_proto(array)`` into
  ``tensorflow_serving.apis.predict_pb2.PredictRequest``, ``SerializeToString()``
- ``JSON instances`` (for reference: the REST client's share of the work):
  ``json.dumps({"signature_name": ..., "instances": array.tolist()})``

**(b) A full predict round trip** to the local model server
(``adapter.modelserver``, started with gRPC and REST), median ms, client and
server on the same machine:

- ``gRPC (ours)``: ``GrpcClient(target).predict(ModelRef(...), {name: array})``,
  the adapter's path: the tensor as ``tensor_content``, outputs decoded to numpy
- ``REST JSON instances``: the tutorials' client, ``POST .../v1/models/M:predict``
  with ``json.dumps({"signature_name": ..., "instances": array.tolist()})``,
  then ``np.array(response.json()["predictions"])``
- ``REST b64 JPEG``: the encoded JPEG as ``{"instances": [{"b64": ...}]}`` to a
  model whose DT_STRING ``image_bytes`` input is decoded and resized in the graph
- ``gRPC (ours) JPEG bytes``: the same JPEG to the same model as a DT_STRING
  tensor, the adapter's ``encoding: bytes`` inputs

Rows: 1. a 224x224x3 float32 tensor (batch 1; the bytes contenders send a
224x224 JPEG q90 of the same image), 2. a 640x640x3 uint8 tensor (a 640x640
JPEG). Each model is cheap on purpose (per-channel means, one strided 3x3
convolution, a dense layer to 10 softmax scores), so the transport dominates.
The models are built once (seeded) and cached under ``var/bench/``.

Both REST contenders use one ``requests.Session`` (kept-alive connections),
which only helps them. Contenders run round-robin, the garbage collector off
while timing (as in ``timeit``), so load drift and GC pauses hit none alone.

Usage: ``python bench/transport.py [--runs N] [--quick]``; writes
``bench/results/transport.md``, ``transport.json`` and ``transport.png``.
``--quick`` is a smoke run (few runs); its results go to ``bench/.work/``, never
to ``bench/results/``.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench.photos` importable
    sys.path.insert(0, str(ROOT))

import google.protobuf  # noqa: E402
import grpc  # noqa: E402
import requests  # noqa: E402

from adapter.modelserver.testing import start_model_server  # noqa: E402
from adapter.serving import codec  # noqa: E402
from adapter.serving.grpc_client import GrpcClient  # noqa: E402
from adapter.serving.protos import predict_pb2  # noqa: E402
from adapter.serving.servable import ModelRef  # noqa: E402
from bench import charts, photos  # noqa: E402
from bench.options import parse  # noqa: E402

CACHE = ROOT / "var" / "bench"

SIGNATURE = "serving_default"
OUTPUT = "scores"
TIMEOUT_S = 30.0
TARGET = 10.0  # gRPC (ours) vs REST JSON instances, row 1: "x times faster"
JPEG_QUALITY = 90

OURS = "gRPC (ours)"
OURS_BYTES = "gRPC (ours) JPEG bytes"
REST_JSON = "REST JSON instances"
REST_B64 = "REST b64 JPEG"
BUILD_OURS = "ours"
BUILD_TF = "TensorFlow"
BUILD_JSON = "JSON instances"

Array = npt.NDArray[Any]
Call = Callable[[], Array]


@dataclass(frozen=True)
class Case:
    """One row: the tensor, the models that take it and its JPEG, the target if any."""

    key: str
    title: str
    size: int  # square images: size x size x 3
    dtype: str
    model: str  # takes the tensor
    input_name: str
    bytes_model: str  # takes the JPEG as DT_STRING image_bytes
    target: float | None

    def pixels(self) -> npt.NDArray[np.uint8]:
        return photos.photo(self.size, self.size, seed=int(self.key))

    def tensor(self) -> Array:
        """The model input, batch 1: float32 in 0..1, or the uint8 pixels as they are."""
        pixels = self.pixels()[np.newaxis]
        return (pixels / np.float32(255)).astype(np.float32) if self.dtype == "float32" else pixels

    def jpeg(self) -> bytes:
        return photos.jpeg(self.pixels(), quality=JPEG_QUALITY)


CASES = [
    Case("1", "224x224x3 float32", 224, "float32", "float224", "images", "bytes224", TARGET),
    Case("2", "640x640x3 uint8", 640, "uint8", "uint640", "input_tensor", "bytes640", None),
]


# --------------------------------------------------------------------------- models


def build_models(out: Path) -> None:
    """Write the bench's SavedModels to ``out/<model>/1/`` (needs TensorFlow).

    Every model ends in the same cheap head: per-channel means and the mean of
    one strided 3x3 convolution (8 filters, ReLU), a dense layer, softmax over
    10 scores. The bytes models decode the JPEG and resize it in the graph,
    as the ResNet ``image_bytes`` SavedModel does.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    rng = np.random.default_rng(20240601)
    kernel = tf.constant(rng.normal(0, 0.2, (3, 3, 3, 8)), tf.float32)
    weights = tf.constant(rng.normal(0, 0.5, (3 + 8, 10)), tf.float32)
    bias = tf.constant(rng.normal(0, 0.1, (10,)), tf.float32)

    def head(images: Any, stride: int) -> dict[str, Any]:  # images: float32 0..1, NHWC
        means = tf.reduce_mean(images, axis=[1, 2])
        conv = tf.nn.relu(tf.nn.conv2d(images, kernel, strides=stride, padding="VALID"))
        features = tf.concat([means, tf.reduce_mean(conv, axis=[1, 2])], axis=1)
        return {OUTPUT: tf.nn.softmax(tf.matmul(features, weights) + bias)}

    def decode(size: int) -> Callable[[Any], Any]:
        def one(data: Any) -> Any:
            image = tf.io.decode_jpeg(data, channels=3)
            return tf.image.resize(image, (size, size)) / 255.0

        return lambda batch: tf.map_fn(
            one, batch, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32)
        )

    class Float224(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32)])
        def serve(self, images: Any) -> dict[str, Any]:
            return head(images, 8)

    class Uint640(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 640, 640, 3], tf.uint8)])
        def serve(self, input_tensor: Any) -> dict[str, Any]:
            return head(tf.cast(input_tensor, tf.float32) / 255.0, 16)

    class Bytes(tf.Module):
        def __init__(self, size: int, stride: int) -> None:
            super().__init__()
            self.decode, self.stride = decode(size), stride

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, image_bytes: Any) -> dict[str, Any]:
            return head(self.decode(image_bytes), self.stride)

    modules = {
        "float224": Float224(),
        "uint640": Uint640(),
        "bytes224": Bytes(224, 8),
        "bytes640": Bytes(640, 16),
    }
    for name, module in modules.items():
        tf.saved_model.save(module, str(out / name / "1"), signatures={SIGNATURE: module.serve})


def models_dir() -> Path:
    """The cached models, built in a child process on first use (this one stays TF-free).

    The cache key is the builder's source: a changed model is never reused.
    """
    digest = hashlib.sha256(inspect.getsource(build_models).encode()).hexdigest()[:10]
    out = CACHE / f"transport-models-{digest}"
    if not (out / ".complete").exists():
        print(f"building the bench models into {out.relative_to(ROOT)} ...", flush=True)
        staging = out.with_name(out.name + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        code = (
            "import pathlib, sys; from bench.transport import build_models as b; "
            "b(pathlib.Path(sys.argv[1]))"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", code, str(staging)], check=True, cwd=ROOT, env=env)
        (staging / ".complete").touch()
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    return out


# --------------------------------------------------------------------------- timing


def time_round_robin(calls: dict[str, Call], runs: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of every contender: ``runs`` rounds, each calling each one once.

    The order rotates each round, so every contender takes every position in
    turn; the garbage collector is off while timing, as in ``timeit``.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()
    try:
        for round_ in range(runs):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                calls[name]()
                samples[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return samples


def stats(seconds: list[float], scale: float) -> dict[str, float]:
    """Median, quartiles and minimum of ``seconds`` times ``scale`` (1e3: ms, 1e6: µs)."""
    values = [s * scale for s in seconds]
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "min": min(values),
    }


# --------------------------------------------------------------------------- (b) round trips


def json_body(array: Array) -> str:
    """The tutorials' REST request body: every value as a JSON number."""
    return json.dumps({"signature_name": SIGNATURE, "instances": array.tolist()})


def b64_body(jpeg: bytes) -> str:
    """The REST request body for an ``image_bytes`` model: the file base64-encoded."""
    encoded = base64.b64encode(jpeg).decode("ascii")
    return json.dumps({"signature_name": SIGNATURE, "instances": [{"b64": encoded}]})


def our_request(case: Case, array: Array) -> predict_pb2.PredictRequest:
    """The adapter's PredictRequest for ``array`` (what GrpcClient sends)."""
    request = predict_pb2.PredictRequest(model_spec=ModelRef(case.model, SIGNATURE).to_spec())
    request.inputs[case.input_name].CopyFrom(codec.to_tensor_proto(array))
    return request


def round_trip_calls(
    case: Case,
    client: GrpcClient,
    session: requests.Session,
    rest_url: str,
    encode_seconds: dict[str, list[float]],
) -> tuple[dict[str, Call], dict[str, int]]:
    """The contenders of one row (each returns the scores, shape [1, 10]) and request sizes.

    The REST calls append the time they spent building their JSON body to
    ``encode_seconds[name]``: the client's share of the round trip.
    """
    array, jpeg = case.tensor(), case.jpeg()
    model = ModelRef(case.model, SIGNATURE)
    bytes_model = ModelRef(case.bytes_model, SIGNATURE)
    jpeg_batch = np.array([jpeg], dtype=object)

    def grpc_tensor() -> Array:
        return client.predict(model, {case.input_name: array}, timeout_s=TIMEOUT_S).outputs[OUTPUT]

    def grpc_bytes() -> Array:
        prediction = client.predict(bytes_model, {"image_bytes": jpeg_batch}, timeout_s=TIMEOUT_S)
        return prediction.outputs[OUTPUT]

    def rest(name: str, model_name: str, body: Callable[[], str]) -> Call:
        url = f"{rest_url}/v1/models/{model_name}:predict"
        encodes = encode_seconds.setdefault(name, [])

        def call() -> Array:
            start = time.perf_counter()
            data = body()
            encodes.append(time.perf_counter() - start)
            response = session.post(url, data=data, timeout=TIMEOUT_S)
            response.raise_for_status()
            return np.array(response.json()["predictions"])

        return call

    calls: dict[str, Call] = {
        OURS: grpc_tensor,
        REST_JSON: rest(REST_JSON, case.model, lambda: json_body(array)),
        REST_B64: rest(REST_B64, case.bytes_model, lambda: b64_body(jpeg)),
        OURS_BYTES: grpc_bytes,
    }
    bytes_request = predict_pb2.PredictRequest(model_spec=bytes_model.to_spec())
    bytes_request.inputs["image_bytes"].CopyFrom(codec.strings_to_tensor_proto([jpeg]))
    sizes = {
        OURS: our_request(case, array).ByteSize(),
        REST_JSON: len(json_body(array).encode()),
        REST_B64: len(b64_body(jpeg).encode()),
        OURS_BYTES: bytes_request.ByteSize(),
    }
    return calls, sizes


def measure_round_trips(
    case: Case,
    calls: dict[str, Call],
    sizes: dict[str, int],
    encode_seconds: dict[str, list[float]],
    runs: int,
    warmup: int,
) -> dict[str, Any]:
    """Time one row's contenders; check every answer against ours' (scores, shape [1, 10])."""
    reference = calls[OURS]()
    if reference.shape != (1, 10):
        raise SystemExit(f"row {case.key}: gRPC answered {reference.shape}, want (1, 10)")
    contenders: dict[str, dict[str, Any]] = {}
    samples = time_round_robin(calls, runs, warmup)
    for name, call in calls.items():
        scores = call()
        if scores.shape != reference.shape:
            raise SystemExit(f"row {case.key}: {name} answered {scores.shape}, want (1, 10)")
        diff = float(np.abs(scores - reference).max())
        if name in (OURS, REST_JSON) and diff > 1e-5:  # the same tensor: the same scores
            raise SystemExit(f"row {case.key}: {name} scores differ from gRPC's by {diff}")
        contenders[name] = {
            **{f"ms_{k}": v for k, v in stats(samples[name], 1e3).items()},
            "request_bytes": sizes[name],
            "max_abs_diff_vs_ours": diff,
        }
        if name in encode_seconds:  # the same calls' own body encoding, median
            contenders[name]["ms_client_encode_median"] = (
                statistics.median(encode_seconds[name]) * 1e3
            )
        print(
            f"  row {case.key} {name:<24} {contenders[name]['ms_median']:9.2f} ms"
            f"  {sizes[name]:>10,} B  max|Δ| {diff:.2e}",
            flush=True,
        )
    ours_ms = contenders[OURS]["ms_median"]
    for result in contenders.values():
        result["ours_speedup"] = result["ms_median"] / ours_ms
    speedup = contenders[REST_JSON]["ours_speedup"]
    return {
        "row": case.key,
        "title": case.title,
        "jpeg_bytes": len(case.jpeg()),
        "contenders": contenders,
        "ours_vs_rest_json": speedup,
        "target": case.target,
        "met": None if case.target is None else speedup >= case.target,
    }


# --------------------------------------------------------------------------- (a) request building


def build_calls(case: Case, tf: Any, tfs_predict: Any) -> dict[str, Callable[[], bytes]]:
    """Building and serializing one PredictRequest, ours and TensorFlow's way."""
    array = case.tensor()

    def ours() -> bytes:
        return our_request(case, array).SerializeToString()

    def tensorflow() -> bytes:
        request = tfs_predict.PredictRequest()
        request.model_spec.name = case.model
        request.model_spec.signature_name = SIGNATURE
        request.inputs[case.input_name].CopyFrom(tf.make_tensor_proto(array))
        result: bytes = request.SerializeToString()
        return result

    return {BUILD_OURS: ours, BUILD_TF: tensorflow}


def measure_builds(
    case: Case,
    calls: dict[str, Callable[[], bytes]],
    runs: tuple[int, int],
    warmup: int,
    tfs_predict: Any,
) -> dict[str, Any]:
    """Time one row's request builders, then REST's JSON body for reference.

    Both protobuf requests must parse to the same message. The JSON body is
    timed on its own (``runs[1]`` times): its 100 ms of allocation churn would
    blur the microsecond timings next to it.
    """
    ours, theirs = calls[BUILD_OURS](), calls[BUILD_TF]()
    if tfs_predict.PredictRequest.FromString(ours) != tfs_predict.PredictRequest.FromString(theirs):
        raise SystemExit(f"row {case.key}: our request differs from TensorFlow's")
    array = case.tensor()
    samples = time_round_robin(calls, runs[0], warmup)
    samples |= time_round_robin({BUILD_JSON: lambda: json_body(array).encode()}, runs[1], 1)
    sizes = {BUILD_OURS: len(ours), BUILD_TF: len(theirs), BUILD_JSON: len(json_body(array))}
    contenders = {}
    for name, seconds in samples.items():
        contenders[name] = {**{f"us_{k}": v for k, v in stats(seconds, 1e6).items()}}
        contenders[name]["bytes"] = sizes[name]
        print(
            f"  row {case.key} {name:<16} {contenders[name]['us_median']:10.1f} µs"
            f"  {sizes[name]:>10,} B",
            flush=True,
        )
    ours_us = contenders[BUILD_OURS]["us_median"]
    for result in contenders.values():
        result["ours_speedup"] = result["us_median"] / ours_us
    return {"row": case.key, "title": case.title, "contenders": contenders}


def import_tensorflow() -> tuple[Any, Any]:
    """TensorFlow and TF Serving's predict_pb2, quietly, pinned to one thread."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2 as tfs_predict

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf, tfs_predict


# --------------------------------------------------------------------------- report


def _faster(ratio: float) -> str:
    """``ratio`` (their time / ours) in words: "12.3x faster", "0.50x (2.00x slower)"."""
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{ratio:.2f}x ({1 / ratio:.2f}x slower)"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def markdown(
    round_trips: list[dict[str, Any]], builds: list[dict[str, Any]], meta: dict[str, Any]
) -> str:
    quick = " (--quick: a smoke run, not for quoting)" if meta["quick"] else ""
    lines = [
        f"Transport to TF Serving: a predict round trip to the local model server "
        f"(gRPC and REST on loopback, {meta['cpus']} CPUs shared by client and server), "
        f"median of {meta['runs']} round-robin runs after {meta['warmup']} warm-up calls"
        f"{quick}.",
        "",
        "| row | contender | ms (median) | request bytes | gRPC (ours) is | target | met |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for row in round_trips:
        for name, result in row["contenders"].items():
            label, speed, target, met = name, "", "", ""
            if name == OURS:
                label = f"**{name}**"
                speed = "(reference)"
            else:
                speed = _faster(result["ours_speedup"])
            if name == REST_JSON:
                speed = f"**{speed}**"
                if row["target"] is not None:
                    target = f">= {row['target']:.0f}x"
                    met = "yes" if row["met"] else "**NO**"
            title = row["title"] if name == OURS else ""
            sent = f"JPEG {row['jpeg_bytes']:,} B" if name in (REST_B64, OURS_BYTES) else ""
            lines.append(
                f"| {row['row']} {title} | {label}{f' ({sent})' if sent else ''} "
                f"| {_ms(result['ms_median'])} | {result['request_bytes']:,} | {speed} "
                f"| {target} | {met} |"
            )
    lines += [
        "",
        f"Building and serializing the request alone (client CPU, no network), median "
        f"of {meta['build_runs']} round-robin runs (the JSON body: of {meta['runs']}):",
        "",
        "| row | builder | µs (median) | bytes | ours is |",
        "|---|---|---:|---:|---|",
    ]
    for row in builds:
        for name, result in row["contenders"].items():
            is_ours = name == BUILD_OURS
            label = {
                BUILD_OURS: "**ours**: `codec.to_tensor_proto` + `adapter.tfs` PredictRequest",
                BUILD_TF: "TensorFlow: `tf.make_tensor_proto` + `tensorflow_serving` "
                "PredictRequest",
                BUILD_JSON: 'REST: `json.dumps({"instances": array.tolist()})`',
            }[name]
            lines.append(
                f"| {row['row']} {row['title'] if is_ours else ''} | {label} "
                f"| {result['us_median']:,.0f} | {result['bytes']:,} "
                f"| {'(reference)' if is_ours else _faster(result['ours_speedup'])} |"
            )
    lines.append("")
    for trip in round_trips:
        ours_ms = trip["contenders"][OURS]["ms_median"]
        rest = trip["contenders"][REST_JSON]
        encode_ms = rest["ms_client_encode_median"]
        lines.append(
            f"Row {trip['row']}: of REST JSON's {_ms(rest['ms_median'])} ms, the client's "
            f"`json.dumps(... array.tolist() ...)` alone takes {_ms(encode_ms)} ms "
            f"(median, timed inside the same calls), {encode_ms / ours_ms:.1f}x our whole "
            f"gRPC round trip."
        )
    lines += [
        "",
        "Round trips: `gRPC (ours)` is `GrpcClient.predict()` with the tensor as "
        "`tensor_content`; `REST JSON instances` posts `array.tolist()` as JSON and "
        "reads `np.array(response.json()['predictions'])`; the two JPEG contenders send "
        f"a q{JPEG_QUALITY} JPEG of the same image to a model that decodes and resizes it "
        "in the graph (`REST b64 JPEG` as `{'b64': ...}`, `gRPC (ours) JPEG bytes` as a "
        "DT_STRING tensor). The models are cheap on purpose (10 scores out), so the "
        "transport dominates. The server is the project's local model server (Python), "
        "not TF Serving's C++ binary: its REST side parses JSON in Python.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def chart(
    round_trips: list[dict[str, Any]],
    builds: list[dict[str, Any]],
    meta: dict[str, Any],
    path: Path,
) -> None:
    """Round trips per row (log ms) and request building (µs), ours highlighted."""
    fig, axes = charts.pyplot().subplots(1, len(round_trips) + 1, figsize=(16, 4.5))
    for ax, row in zip(axes, round_trips, strict=False):
        names = list(row["contenders"])
        values = [row["contenders"][n]["ms_median"] for n in names]
        colours = [charts.OURS_COLOUR if "ours" in n else charts.PEER_COLOUR for n in names]
        xlabel = "ms per round trip, log scale (lower is better)"
        charts.bars(ax, names, values, colours, xlabel, text=_ms, log=True)
        ax.set_title(
            f"{row['row']}. {row['title']}: gRPC (ours) vs REST JSON "
            f"{_faster(row['ours_vs_rest_json'])}",
            fontsize=9,
        )
    ax = axes[-1]
    labels, values, colours = [], [], []
    for row in builds:
        for name, result in row["contenders"].items():
            if name == BUILD_JSON:
                continue
            labels.append(f"{row['title']}: {name}")
            values.append(result["us_median"])
            colours.append(charts.OURS_COLOUR if name == BUILD_OURS else charts.PEER_COLOUR)
    charts.bars(
        ax, labels, values, colours, "µs to build + serialize the PredictRequest",
        text=lambda value: f"{value:,.0f}",
    )  # fmt: skip
    ax.set_title("Request building: ours vs TensorFlow", fontsize=9)
    quick = charts.QUICK_NOTE if meta["quick"] else ""
    title = (
        f"Transport to the local model server, median of {meta['runs']} runs "
        f"(orange: the adapter's paths{quick})"
    )
    charts.finish(fig, axes, title, path)


# --------------------------------------------------------------------------- main


def main() -> int:
    """Round trips first (this process TF-free), then request building with TensorFlow."""
    options = parse(__doc__, runs=(3, 40), runs_help="timed round trips per contender")
    runs, warmup, out = options.runs, options.warmup, options.out
    build_runs, build_warmup = (20, 2) if options.quick else (300, 20)

    models = models_dir()
    print("round trips to the local model server (gRPC + REST):", flush=True)
    round_trips = []
    with start_model_server(["--models_dir", str(models)], rest=True) as server:
        client = GrpcClient(server.target)
        with requests.Session() as session:
            for case in CASES:
                encodes: dict[str, list[float]] = {}
                calls, sizes = round_trip_calls(case, client, session, server.rest_url, encodes)
                round_trips.append(measure_round_trips(case, calls, sizes, encodes, runs, warmup))
        client.close()

    print("building requests (TensorFlow imported now):", flush=True)
    tf, tfs_predict = import_tensorflow()
    builds = [
        measure_builds(case, build_calls(case, tf, tfs_predict), (build_runs, runs),
                       build_warmup, tfs_predict)
        for case in CASES
    ]  # fmt: skip

    meta = {
        "runs": runs,
        "warmup": warmup,
        "build_runs": build_runs,
        "quick": options.quick,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "grpcio": grpc.__version__,
            "protobuf": google.protobuf.__version__,
            "requests": requests.__version__,
            "tensorflow": tf.__version__,
        },
    }
    text = markdown(round_trips, builds, meta)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transport.md").write_text(text)
    payload = {"meta": meta, "round_trips": round_trips, "builds": builds}
    (out / "transport.json").write_text(json.dumps(payload, indent=2) + "\n")
    chart(round_trips, builds, meta, out / "transport.png")
    print()
    print(text, end="")
    if options.quick:
        print(f"\n(--quick: written to {out.relative_to(ROOT)}, not bench/results)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
