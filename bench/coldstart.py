"""Cold start: gunicorn start to the first detect answer, and import + create_app().

**(a) Gunicorn start to the first detect answer**, the adapter beside a
minimal tutorial-style adapter on ``tensorflow_serving.apis``. Each run starts
a fresh gunicorn with the project's settings and one worker (``python -m
gunicorn -c python:adapter.gunicorn_conf --bind 127.0.0.1:PORT --workers 1``,
``adapter.local.adapter_command``: ``gthread``, no ``preload_app``) and
measures, from just before ``Popen`` to the first ``200``:

- the time to the first successful ``POST /v1/models/digits/detect`` of
  ``adapter/demo/samples/digits.jpg`` (multipart ``image``), polled by sending
  the detect itself again after a 10 ms pause while the connection is refused
  or the answer is not 200; the answer must hold detections;
- then the worker's memory (the gunicorn master's only child, via psutil):
  ``VmRSS`` from ``/proc/PID/status`` and USS (pages no other process shares).

Contenders, both served by those same gunicorn settings:

- ``tfs-adapter``: the config's app, ``adapter.app:create_app()``
- ``tensorflow_serving.apis adapter``: ``bench/tfs_apis_adapter.py``
  (``'bench.tfs_apis_adapter:create_app()'`` on the command line): Pillow
  decode and letterbox to 320x320 uint8, ``tf.make_tensor_proto`` into a
  ``predict_pb2.PredictRequest``, a ``PredictionServiceStub`` made on the first
  request, raw output tensors as JSON

Both talk to one local model server (``adapter.modelserver``, started once for
the run on ``var/models``). One throwaway round (each contender started once,
not counted) warms the model server and the page cache; then the contenders
run round-robin, ``--runs`` times each, and the table shows the median (and
min..max). Targets (the issue): tfs-adapter <= 1.0 s and <= 120 MB worker RSS,
and >= 3x faster than the ``tensorflow_serving.apis`` adapter.

**(b) Import + create_app() in a fresh interpreter** (no server, no request),
where the time of (a) starts: ``from adapter.app import create_app;
create_app()``, beside the floor (``import flask, grpc, numpy`` and a Flask
app) and a Flask app importing ``tensorflow_serving.apis`` (which imports all
of TensorFlow); the process's ``VmRSS`` after it and the whole process's wall
time. Round-robin after one warm-up each, median of ``--runs``.

Usage: ``python bench/coldstart.py [--runs N] [--quick]`` (default 5 runs,
about 2 minutes); writes ``bench/results/coldstart.md``, ``coldstart.json``
and ``coldstart.png``. ``--quick`` is a smoke run (2 runs); its results go to
``bench/.work/``, never to ``bench/results/``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench.charts` importable
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from adapter.local import adapter_command, stop  # noqa: E402
from adapter.modelserver.testing import free_port, start_model_server  # noqa: E402
from bench import charts  # noqa: E402
from bench.options import WORK, parse  # noqa: E402

SAMPLE = ROOT / "adapter" / "demo" / "samples" / "digits.jpg"
MODELS = ROOT / "var" / "models"
DETECT = "/v1/models/digits/detect"

TARGET_FIRST_DETECT_S = 1.0
TARGET_RSS_MB = 120.0
TARGET_SPEEDUP = 3.0
IMPORT_TARGET_S, IMPORT_TARGET_RSS_MB = 0.5, 100.0  # (b): the first cold-start benchmark's
POLL_S = 0.01
TARGET_LINE = {"color": "black", "linestyle": "--", "linewidth": 0.8, "alpha": 0.5, "zorder": 0}
BOOT_TIMEOUT_S = 60.0
MB = 1024 * 1024

OURS = "tfs-adapter"
TF = "tensorflow_serving.apis adapter"


class Failed(Exception):
    """A contender did not come up or answered without detections."""


# --------------------------------------------------------------------------- (a) gunicorn


def _has_detections_ours(body: dict[str, Any]) -> bool:
    return len(body.get("detections", [])) > 0


def _has_detections_tf(body: dict[str, Any]) -> bool:
    count = body.get("num_detections", [0])
    return float(count[0] if isinstance(count, list) else count) > 0


@dataclass(frozen=True)
class Server:
    """A gunicorn contender: the app URI it adds to the command line, its answer's check."""

    app: str | None  # None: the config's own wsgi_app
    has_detections: Callable[[dict[str, Any]], bool]

    def command(self, port: int) -> list[str]:
        return adapter_command(port, workers=1) + ([self.app] if self.app else [])


SERVERS = {
    OURS: Server(None, _has_detections_ours),
    TF: Server("bench.tfs_apis_adapter:create_app()", _has_detections_tf),
}


def _vm_rss_mb(pid: int) -> float:
    """``VmRSS`` of ``pid`` from ``/proc/PID/status``, MB."""
    with open(f"/proc/{pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


def first_detect(server: Server, target: str, log_path: Path) -> dict[str, float]:
    """Start gunicorn, post the sample until a 200; then the worker's memory. Stops it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{DETECT}"
    files = {"image": (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg")}
    env = {**os.environ, "ADAPTER_TFS_TARGET": target, "TF_CPP_MIN_LOG_LEVEL": "3"}
    attempts = 0
    with log_path.open("a") as log:
        log.write(f"\n===== {' '.join(server.command(port))}\n")
        log.flush()
        start = time.perf_counter()
        process = subprocess.Popen(
            server.command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        while True:
            attempts += 1
            try:
                response = requests.post(url, files=files, timeout=BOOT_TIMEOUT_S)
                if response.status_code == 200:
                    elapsed = time.perf_counter() - start
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None:
                raise Failed(f"gunicorn exited with {process.returncode}:\n{_tail(log_path)}")
            if time.perf_counter() - start > BOOT_TIMEOUT_S:
                raise Failed(f"no 200 within {BOOT_TIMEOUT_S:.0f} s:\n{_tail(log_path)}")
            time.sleep(POLL_S)
        if not server.has_detections(response.json()):
            raise Failed(f"200 without detections: {response.text[:300]}")
        workers = psutil.Process(process.pid).children()
        if len(workers) != 1:
            raise Failed(f"expected one gunicorn worker, found {len(workers)}")
        worker = workers[0]
        return {
            "first_detect_s": elapsed,
            "worker_rss_mb": _vm_rss_mb(worker.pid),
            "worker_uss_mb": worker.memory_full_info().uss / MB,
            "master_rss_mb": _vm_rss_mb(process.pid),
            "attempts": attempts,
        }
    finally:
        stop(process)


def measure_gunicorn(runs: int, log_path: Path) -> dict[str, Any]:
    """One throwaway round, then ``runs`` round-robin rounds; medians and samples."""
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    with start_model_server(["--models_dir", str(MODELS)]) as model_server:
        for name, server in SERVERS.items():
            warm = first_detect(server, model_server.target, log_path)
            print(f"  warm-up {name}: {warm['first_detect_s']:.3f} s", flush=True)
        for run in range(runs):
            for name, server in SERVERS.items():
                sample = first_detect(server, model_server.target, log_path)
                samples[name].append(sample)
                print(
                    f"  run {run + 1}/{runs} {name}: {sample['first_detect_s']:.3f} s, "
                    f"worker RSS {sample['worker_rss_mb']:.0f} MB",
                    flush=True,
                )
    contenders = {}
    for name, rows in samples.items():
        times = [r["first_detect_s"] for r in rows]
        contenders[name] = {
            "command": SERVERS[name].command(0),
            "first_detect_s": statistics.median(times),
            "first_detect_min_s": min(times),
            "first_detect_max_s": max(times),
            "worker_rss_mb": statistics.median(r["worker_rss_mb"] for r in rows),
            "worker_uss_mb": statistics.median(r["worker_uss_mb"] for r in rows),
            "master_rss_mb": statistics.median(r["master_rss_mb"] for r in rows),
            "samples": rows,
        }
    ours, tf = contenders[OURS], contenders[TF]
    speedup = tf["first_detect_s"] / ours["first_detect_s"]
    targets = [
        {
            "target": f"{OURS}: start to first detect <= {TARGET_FIRST_DETECT_S:.1f} s",
            "value": f"{ours['first_detect_s']:.3f} s",
            "met": ours["first_detect_s"] <= TARGET_FIRST_DETECT_S,
        },
        {
            "target": f"{OURS}: worker RSS <= {TARGET_RSS_MB:.0f} MB",
            "value": f"{ours['worker_rss_mb']:.0f} MB",
            "met": ours["worker_rss_mb"] <= TARGET_RSS_MB,
        },
        {
            "target": f"{OURS} >= {TARGET_SPEEDUP:.0f}x faster to first detect than the {TF}",
            "value": f"{speedup:.1f}x",
            "met": speedup >= TARGET_SPEEDUP,
        },
    ]
    return {"contenders": contenders, "speedup": speedup, "targets": targets}


# --------------------------------------------------------------------------- (b) import


_MEASURE = """
import time
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
rss_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
print(elapsed, rss_kb / 1024)
"""

IMPORTS = {
    "tfs-adapter": "from adapter.app import create_app\napp = create_app()",
    "flask+grpc+numpy": "import flask, grpc, numpy\napp = flask.Flask('x')",
    "tensorflow_serving.apis": (
        "import flask, grpc\n"
        "from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc\n"
        "app = flask.Flask('x')"
    ),
}


def measure_import(body: str) -> tuple[float, float, float]:
    """Run ``body`` in a fresh interpreter: (import+create s, RSS MB, whole process s)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE.format(body=body)],
        capture_output=True, text=True, check=True, env=env, cwd=ROOT,
    )  # fmt: skip
    wall = time.perf_counter() - start
    elapsed, rss = (float(v) for v in result.stdout.split()[-2:])
    return elapsed, rss, wall


def measure_imports(runs: int) -> dict[str, Any]:
    """One warm-up each (the page cache), then ``runs`` round-robin rounds; medians."""
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in IMPORTS}
    for body in IMPORTS.values():
        measure_import(body)
    for _ in range(runs):
        for name, body in IMPORTS.items():
            samples[name].append(measure_import(body))
    rows = {}
    for name, rows_ in samples.items():
        rows[name] = {
            "import_create_s": statistics.median(s[0] for s in rows_),
            "rss_mb": statistics.median(s[1] for s in rows_),
            "process_s": statistics.median(s[2] for s in rows_),
        }
        print(f"  {name}: {rows[name]}", flush=True)
    return rows


# --------------------------------------------------------------------------- report


def _verdict(met: bool) -> str:
    return "**PASS**" if met else "**MISS**"


def markdown(gunicorn: dict[str, Any], imports: dict[str, Any], meta: dict[str, Any]) -> str:
    quick = " (--quick: a smoke run, not for quoting)" if meta["quick"] else ""
    lines = [
        f"(a) Gunicorn start to the first detect answer: a fresh `gunicorn -c "
        f"python:adapter.gunicorn_conf --workers 1` (gthread) per run, from just before "
        f"`Popen` to the first 200 of `POST {DETECT}` with `digits.jpg` (detections "
        f"checked), then the worker's memory; both adapters in front of the same warm local "
        f"model server, median of {meta['runs']} round-robin runs, {meta['cpus']} CPUs{quick}.",
        "",
        "| adapter | start to first detect (s, median) | min..max (s) "
        "| worker RSS (MB) | worker USS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in gunicorn["contenders"].items():
        label = f"**{name}**" if name == OURS else name
        lines.append(
            f"| {label} | {row['first_detect_s']:.3f} "
            f"| {row['first_detect_min_s']:.3f}..{row['first_detect_max_s']:.3f} "
            f"| {row['worker_rss_mb']:.0f} | {row['worker_uss_mb']:.0f} |"
        )
    lines += ["", "| target (the issue) | measured | result |", "|---|---:|---|"]
    for target in gunicorn["targets"]:
        lines.append(f"| {target['target']} | {target['value']} | {_verdict(target['met'])} |")
    masters = ", ".join(
        f"{name} {row['master_rss_mb']:.0f} MB" for name, row in gunicorn["contenders"].items()
    )
    lines += [
        "",
        "The time includes the interpreter's start, gunicorn's master (which loads "
        "the config and what it imports, before the fork), the worker's fork and "
        "app import, the upload's decode and resize, the first gRPC channel and "
        "Predict. RSS counts pages the worker shares with its master (forked); USS "
        "only its own. Master RSS (median): "
        f"{masters}. The {TF} is `bench/tfs_apis_adapter.py`, a Flask app as the "
        "tutorials write it (Pillow letterbox, `tf.make_tensor_proto`, "
        "`PredictionServiceStub`), served by the same gunicorn settings.",
        "",
        f"(b) Import + `create_app()` in a fresh interpreter, the start of (a): median "
        f"of {meta['runs']} round-robin runs{quick}.",
        "",
        "| process | import + create_app (s) | RSS after (MB) | whole process (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in imports.items():
        lines.append(
            f"| {name} | {row['import_create_s']:.3f} | {row['rss_mb']:.0f} "
            f"| {row['process_s']:.3f} |"
        )
    ours, tf = imports["tfs-adapter"], imports["tensorflow_serving.apis"]
    time_ok = ours["import_create_s"] <= IMPORT_TARGET_S
    rss_ok = ours["rss_mb"] <= IMPORT_TARGET_RSS_MB
    lines += [
        "",
        f"tfs-adapter vs tensorflow_serving.apis: "
        f"{tf['import_create_s'] / ours['import_create_s']:.1f}x faster, "
        f"{tf['rss_mb'] / ours['rss_mb']:.1f}x less memory. Earlier targets (import + "
        f"create_app <= {IMPORT_TARGET_S} s, <= {IMPORT_TARGET_RSS_MB:.0f} MB): time "
        f"{_verdict(time_ok)}, memory {_verdict(rss_ok)}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def chart(
    gunicorn: dict[str, Any], imports: dict[str, Any], meta: dict[str, Any], path: Path
) -> None:
    """Three panels: (a) time to first detect, (a) worker RSS, (b) import + create_app."""
    fig, axes = charts.pyplot().subplots(1, 3, figsize=(16, 3.6))
    contenders = gunicorn["contenders"]
    names = list(contenders)
    colours = [charts.OURS_COLOUR if n == OURS else charts.PEER_COLOUR for n in names]
    times = [contenders[n]["first_detect_s"] for n in names]
    charts.bars(
        axes[0], names, times, colours, "seconds, median (lower is better)",
        text=lambda v: f"{v:.2f} s",
    )  # fmt: skip
    axes[0].axvline(TARGET_FIRST_DETECT_S, **TARGET_LINE)
    axes[0].set_title(
        f"(a) gunicorn start to first detect\n"
        f"target <= {TARGET_FIRST_DETECT_S:.1f} s (dashed), {gunicorn['speedup']:.1f}x faster "
        f"(target >= {TARGET_SPEEDUP:.0f}x)",
        fontsize=9,
    )
    rss = [contenders[n]["worker_rss_mb"] for n in names]
    uss = {contenders[n]["worker_rss_mb"]: contenders[n]["worker_uss_mb"] for n in names}
    charts.bars(
        axes[1], names, rss, colours, "MB, median (lower is better)",
        text=lambda v: f"{v:.0f} MB (USS {uss[v]:.0f})",
    )  # fmt: skip
    axes[1].set_xlim(0, max(rss) * 1.6)
    axes[1].axvline(TARGET_RSS_MB, **TARGET_LINE)
    axes[1].set_title(
        f"(a) worker RSS after the first detect\ntarget <= {TARGET_RSS_MB:.0f} MB (dashed)",
        fontsize=9,
    )
    import_names = list(imports)
    charts.bars(
        axes[2], import_names, [imports[n]["import_create_s"] for n in import_names],
        [charts.OURS_COLOUR if n == "tfs-adapter" else charts.PEER_COLOUR for n in import_names],
        "seconds, median (lower is better)", text=lambda v: f"{v:.2f} s",
    )  # fmt: skip
    axes[2].set_title("(b) import + create_app(),\nfresh interpreter", fontsize=9)
    quick = charts.QUICK_NOTE if meta["quick"] else ""
    title = (
        f"Cold start, median of {meta['runs']} runs, {meta['cpus']} CPUs "
        f"(orange: tfs-adapter{quick})"
    )
    charts.finish(fig, axes, title, path)


# --------------------------------------------------------------------------- main


def main() -> int:
    """Measure (a) then (b), write the results; 1 if a target of (a) is missed."""
    options = parse(__doc__, runs=(2, 5), runs_help="runs per contender (5)")
    runs, out = options.runs, options.out
    log_path = WORK / "coldstart-gunicorn.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")

    print("(a) gunicorn start to the first detect answer ...", flush=True)
    try:
        gunicorn = measure_gunicorn(runs, log_path)
    except Failed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    print("(b) import + create_app() in a fresh interpreter ...", flush=True)
    imports = measure_imports(runs)

    meta = {
        "runs": runs,
        "quick": options.quick,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "poll_s": POLL_S,
        "sample": {SAMPLE.name: SAMPLE.stat().st_size},
        "versions": {
            p: version(p)
            for p in ("gunicorn", "flask", "grpcio", "tensorflow", "tensorflow-serving-api")
        },
    }
    text = markdown(gunicorn, imports, meta)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coldstart.md").write_text(text)
    payload = {"meta": meta, "gunicorn": gunicorn, "import": imports}
    (out / "coldstart.json").write_text(json.dumps(payload, indent=2) + "\n")
    chart(gunicorn, imports, meta, out / "coldstart.png")
    print()
    print(text, end="")
    if options.quick:
        print(f"\n(--quick: written to {out.relative_to(ROOT)}, not bench/results)")
    return 0 if all(t["met"] for t in gunicorn["targets"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
