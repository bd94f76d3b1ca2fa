"""Cold start: import + create_app() time and RSS in a fresh process, vs. peers.

Each contender runs in a fresh interpreter, several times; the table shows the
median. Contenders:

- ``tfs-adapter``: ``from adapter.app import create_app; create_app()``
- ``flask+grpc+numpy``: the floor, the libraries the adapter stands on
- ``tensorflow_serving.apis``: a Flask app using TF Serving's own client
  protos, which import all of TensorFlow

Usage: ``python bench/coldstart.py [--runs 7]``; writes
``bench/results/coldstart.md`` and ``coldstart.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TARGET_SECONDS = 0.5
TARGET_RSS_MB = 100.0

_MEASURE = """
import resource, time
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
rss_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
print(elapsed, rss_kb / 1024)
"""

CONTENDERS = {
    "tfs-adapter": "from adapter.app import create_app\napp = create_app()",
    "flask+grpc+numpy": "import flask, grpc, numpy\napp = flask.Flask('x')",
    "tensorflow_serving.apis": (
        "import flask, grpc\n"
        "from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc\n"
        "app = flask.Flask('x')"
    ),
}


def measure(body: str) -> tuple[float, float, float]:
    """Run ``body`` in a fresh interpreter: (import+create s, RSS MB, whole process s)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE.format(body=body)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - start
    elapsed, rss = (float(v) for v in result.stdout.split()[-2:])
    return elapsed, rss, wall


def main() -> int:
    """Measure every contender ``--runs`` times and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = {}
    for name, body in CONTENDERS.items():
        measure(body)  # warm the page cache so every run reads the same files
        samples = [measure(body) for _ in range(args.runs)]
        rows[name] = {
            "import_create_s": statistics.median(s[0] for s in samples),
            "rss_mb": statistics.median(s[1] for s in samples),
            "process_s": statistics.median(s[2] for s in samples),
        }
        print(f"{name}: {rows[name]}", flush=True)
    ours, tf = rows["tfs-adapter"], rows["tensorflow_serving.apis"]
    lines = [
        f"Cold start, median of {args.runs} fresh processes "
        f"(targets: tfs-adapter <= {TARGET_SECONDS} s and <= {TARGET_RSS_MB:.0f} MB)",
        "",
        "| process | import + create_app (s) | RSS after (MB) | whole process (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['import_create_s']:.3f} | {row['rss_mb']:.0f} "
            f"| {row['process_s']:.3f} |"
        )
    lines += [
        "",
        f"tfs-adapter vs tensorflow_serving.apis: "
        f"{tf['import_create_s'] / ours['import_create_s']:.1f}x faster, "
        f"{tf['rss_mb'] / ours['rss_mb']:.1f}x less memory. "
        f"Targets met: time {'yes' if ours['import_create_s'] <= TARGET_SECONDS else 'NO'}, "
        f"memory {'yes' if ours['rss_mb'] <= TARGET_RSS_MB else 'NO'}.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coldstart.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "coldstart.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
