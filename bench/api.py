"""The public HTTP API end to end: batches vs one by one, and the input and answer styles.

Everything is real and on this machine: the local model server
(``adapter.modelserver``, TF Serving's gRPC API) and the adapter under gunicorn
(one ``gthread`` worker, as ``tests/conftest.py``'s ``live_url``) talking to it
over loopback. The client is one ``requests.Session`` (kept-alive connection)
in this process; it builds every request body inside the timed call, so the
client's share (multipart or base64 encoding, reading the answer) is counted.
Client, adapter and model server share the machine's CPUs.

**(a) Batch vs one by one**, 8 images per timed call:

- ``one request, batch of 8``: 8 repeated multipart ``image`` parts in one
  ``POST``, which the adapter sends to the model as one Predict with a batch of 8
- ``8 requests, 1 image each``: 8 sequential single-image multipart ``POST``\\ s

Rows: ``adapter/demo/samples/digits.jpg`` (1280x720) to
``POST /v1/models/digits/detect``, and ``seven.png`` to
``POST /v1/models/digit-classes/classify``. Reported: ms per 8 images, images/s.

**(b) Input and answer styles**, one image (``digits.jpg``) per request to
``digits/detect``: multipart (``-F image=@``), JSON ``{"image": {"b64": ...}}``
(the client's base64 encoding is timed), the raw file as an ``image/jpeg``
body, and the annotated answer (multipart upload, ``Accept: image/jpeg`` or
``Accept: image/png``). Reported: ms per request and the answer's size.

Before timing, each contender's answer is checked: status 200, the expected
``Content-Type``, and for batches 8 results and no per-image error. A
contender that fails (then or during timing) is reported as failed and
dropped, never timed. Contenders of a row run round-robin after warm-up calls,
the client's garbage collector off while timing (as in ``timeit``); the tables
show the median and 90th percentile, and the adapter's own ``Server-Timing``
(decode, inference, annotate), summed over a call's requests.

Usage: ``python bench/api.py [--runs N] [--quick]``; writes
``bench/results/api.md``, ``api.json`` and ``api.png``. ``--quick`` is a smoke
run (few runs); its results go to ``bench/.work/``, never to ``bench/results/``.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench.charts` importable
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from adapter.local import adapter_command, spawn, stop, wait_for_http  # noqa: E402
from adapter.modelserver.testing import free_port, start_model_server  # noqa: E402
from bench import charts  # noqa: E402
from bench.options import WORK, parse  # noqa: E402

SAMPLES = ROOT / "adapter" / "demo" / "samples"
MODELS = ROOT / "var" / "models"

BATCH = 8
TIMEOUT_S = 30.0
READY_TIMEOUT_S = 60.0
BATCHED = f"one request, batch of {BATCH}"
ONE_BY_ONE = f"{BATCH} requests, 1 image each"
MULTIPART = "multipart (-F image=@)"
JSON_B64 = 'JSON {"image": {"b64": ...}}'
RAW = "raw body, Content-Type: image/jpeg"
ANNOTATED_JPEG = "multipart, Accept: image/jpeg"
ANNOTATED_PNG = "multipart, Accept: image/png"
MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}

Responses = list[requests.Response]
Call = Callable[[], Responses]


class Failed(Exception):
    """A contender's answer was not what it should be: it is reported, never timed."""


@dataclass(frozen=True)
class Sample:
    """A sample upload and the endpoint it goes to."""

    filename: str
    content_type: str
    path: str  # e.g. /v1/models/digits/detect
    answer_key: str  # the single-image answer's list: detections or classifications

    def data(self) -> bytes:
        return (SAMPLES / self.filename).read_bytes()

    def part(self) -> tuple[str, tuple[str, bytes, str]]:
        """One multipart ``image`` part, as ``curl -F image=@FILE`` sends it."""
        return ("image", (self.filename, self.data(), self.content_type))


DIGITS = Sample("digits.jpg", "image/jpeg", "/v1/models/digits/detect", "detections")
SEVEN = Sample("seven.png", "image/png", "/v1/models/digit-classes/classify", "classifications")
BATCH_ROWS = [("1", "digits.jpg -> digits/detect", DIGITS), ("2", "seven.png -> classify", SEVEN)]
STYLES_ROW = ("3", "digits.jpg -> digits/detect, one image per request")


@dataclass(frozen=True)
class Contender:
    """A timed call (its requests) and the check of one answer it gets."""

    call: Call
    check: Callable[[requests.Response], None]


# --------------------------------------------------------------------------- the service


@contextlib.contextmanager
def running_service(log_path: Path) -> Iterator[str]:
    """The model server and a one-worker gunicorn adapter on it; yields the adapter's URL.

    Gunicorn's access and error logs go to ``log_path`` rather than this
    terminal (one line per request would bury the progress lines).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")  # gunicorn appends: keep this run's lines only
    with start_model_server(["--models_dir", str(MODELS)]) as server:
        port = free_port()
        env = {**os.environ, "ADAPTER_TFS_TARGET": server.target}
        logs = ["--access-logfile", str(log_path), "--error-logfile", str(log_path)]
        process = spawn(adapter_command(port, workers=1) + logs, env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/readyz", [process], timeout_s=READY_TIMEOUT_S)
            yield url
        except (RuntimeError, TimeoutError):
            print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop(process)


# --------------------------------------------------------------------------- contenders


def _problem(response: requests.Response) -> str:
    """``status title: detail`` of an unexpected answer, short."""
    try:
        body = response.json()
        text = f"{body.get('title', '')}: {body.get('detail', '')}"
    except ValueError:
        text = response.text[:120]
    return f"{response.status_code} {text}"[:200]


def expect_json(key: str, batch: int | None = None) -> Callable[[requests.Response], None]:
    """A check: 200 JSON with ``key``, or with ``batch`` results that each have it."""

    def check(response: requests.Response) -> None:
        if response.status_code != 200:
            raise Failed(_problem(response))
        body = response.json()
        items = [body] if batch is None else body.get("results", [])
        if batch is not None and len(items) != batch:
            raise Failed(f"{len(items)} results, want {batch}")
        for item in items:
            if "error" in item:
                raise Failed(f"a result is an error: {item['error'].get('title')}")
            if key not in item:
                raise Failed(f"no {key!r} in the answer")

    return check


def expect_image(content_type: str) -> Callable[[requests.Response], None]:
    """A check: 200 with ``content_type`` and that format's magic bytes."""

    def check(response: requests.Response) -> None:
        if response.status_code != 200:
            raise Failed(_problem(response))
        got = response.headers.get("Content-Type", "")
        if got != content_type or not response.content.startswith(MAGIC[content_type]):
            raise Failed(f"answer is {got!r}, want {content_type}")

    return check


def batch_contenders(session: requests.Session, url: str, sample: Sample) -> dict[str, Contender]:
    """(a) 8 images in one multipart request vs 8 single-image requests."""
    endpoint, part = url + sample.path, sample.part()  # the file is read once, here

    def batched() -> Responses:
        return [session.post(endpoint, files=[part] * BATCH, timeout=TIMEOUT_S)]

    def one_by_one() -> Responses:
        return [session.post(endpoint, files=[part], timeout=TIMEOUT_S) for _ in range(BATCH)]

    return {
        BATCHED: Contender(batched, expect_json(sample.answer_key, BATCH)),
        ONE_BY_ONE: Contender(one_by_one, expect_json(sample.answer_key)),
    }


def style_contenders(session: requests.Session, url: str) -> dict[str, Contender]:
    """(b) One image in each input style, and the two annotated answers."""
    endpoint, part = url + DIGITS.path, DIGITS.part()  # the file is read once, here
    jpeg = DIGITS.data()

    def multipart(accept: str | None = None) -> Call:
        headers = {"Accept": accept} if accept else {}
        return lambda: [session.post(endpoint, files=[part], headers=headers, timeout=TIMEOUT_S)]

    def json_b64() -> Responses:
        body = {"image": {"b64": base64.b64encode(jpeg).decode("ascii")}}
        return [session.post(endpoint, json=body, timeout=TIMEOUT_S)]

    def raw() -> Responses:
        headers = {"Content-Type": DIGITS.content_type}
        return [session.post(endpoint, data=jpeg, headers=headers, timeout=TIMEOUT_S)]

    answer = expect_json(DIGITS.answer_key)
    return {
        MULTIPART: Contender(multipart(), answer),
        JSON_B64: Contender(json_b64, answer),
        RAW: Contender(raw, answer),
        ANNOTATED_JPEG: Contender(multipart("image/jpeg"), expect_image("image/jpeg")),
        ANNOTATED_PNG: Contender(multipart("image/png"), expect_image("image/png")),
    }


# --------------------------------------------------------------------------- timing


def server_timing(responses: Responses) -> dict[str, float]:
    """The adapter's ``Server-Timing`` durations (ms) by name, summed over ``responses``."""
    total: dict[str, float] = {}
    for response in responses:
        for entry in response.headers.get("Server-Timing", "").split(","):
            name, _, duration = entry.strip().partition(";dur=")
            if duration:
                total[name] = total.get(name, 0.0) + float(duration)
    return total


@dataclass
class Samples:
    """What timing one contender collected: seconds per call, server timings, a failure."""

    seconds: list[float]
    server: list[dict[str, float]]
    response_bytes: int = 0
    error: str | None = None


def _check_and_warm_up(contender: Contender, samples: Samples, warmup: int) -> None:
    """Check one answer of ``contender`` (its size goes to ``samples``), then warm it up."""
    try:
        responses = contender.call()
        for response in responses:
            contender.check(response)
        samples.response_bytes = sum(len(r.content) for r in responses)
        for _ in range(warmup):
            contender.call()
    except (Failed, requests.RequestException) as exc:
        samples.error = str(exc) or type(exc).__name__


def time_round_robin(
    contenders: dict[str, Contender], runs: int, warmup: int
) -> dict[str, Samples]:
    """Check each contender's answer, warm it up, then time ``runs`` rounds of all of them.

    The order rotates each round, so every contender takes every position in
    turn; the garbage collector is off while timing. A contender whose answer
    fails its check (before or during timing) is dropped with its error.
    """
    results = {name: Samples([], []) for name in contenders}
    for name, contender in contenders.items():
        _check_and_warm_up(contender, results[name], warmup)
    live = [name for name in contenders if results[name].error is None]
    gc.collect()
    gc.disable()
    try:
        for round_ in range(runs):
            shift = round_ % max(len(live), 1)
            for name in live[shift:] + live[:shift]:
                start = time.perf_counter()
                try:
                    responses = contenders[name].call()
                except requests.RequestException as exc:
                    results[name].error = f"during timing: {exc}"
                    continue
                elapsed = time.perf_counter() - start
                bad = [r for r in responses if r.status_code != 200]
                if bad:
                    results[name].error = f"during timing: {_problem(bad[0])}"
                    continue
                results[name].seconds.append(elapsed)
                results[name].server.append(server_timing(responses))
            live = [name for name in live if results[name].error is None]
    finally:
        gc.enable()
    return results


def stats(samples: Samples) -> dict[str, Any]:
    """Median, 90th percentile and minimum ms; the server's timings' medians."""
    if samples.error is not None or not samples.seconds:
        return {"error": samples.error or "no runs"}
    ms = [s * 1e3 for s in samples.seconds]
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    names = list(dict.fromkeys(name for timing in samples.server for name in timing))
    server = {n: statistics.median(t.get(n, 0.0) for t in samples.server) for n in names}
    return {
        "ms_median": statistics.median(ms),
        "ms_p90": p90,
        "ms_min": min(ms),
        "runs": len(ms),
        "response_bytes": samples.response_bytes,
        "server_ms_median": server,
    }


def measure_row(
    key: str, title: str, contenders: dict[str, Contender], runs: int, warmup: int
) -> dict[str, Any]:
    """Time one row's contenders and print a line for each."""
    results = {n: stats(s) for n, s in time_round_robin(contenders, runs, warmup).items()}
    for name, result in results.items():
        if "error" in result:
            print(f"  row {key} {name:<36} FAILED: {result['error']}", flush=True)
        else:
            print(
                f"  row {key} {name:<36} {result['ms_median']:8.1f} ms"
                f"  p90 {result['ms_p90']:8.1f}  {result['response_bytes']:>9,} B",
                flush=True,
            )
    return {"row": key, "title": title, "contenders": results}


def add_ratios(row: dict[str, Any], reference: str, images: int) -> None:
    """Each contender's time over ``reference``'s, and images per second."""
    contenders = row["contenders"]
    base = contenders[reference].get("ms_median")
    for result in contenders.values():
        if "error" in result:
            continue
        result["images_per_s"] = images * 1e3 / result["ms_median"]
        if base is not None:
            result["vs_reference"] = result["ms_median"] / base


# --------------------------------------------------------------------------- report


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _server(result: dict[str, Any]) -> str:
    """The adapter's Server-Timing medians, e.g. ``decode 1.4, inference 19.5``."""
    return ", ".join(f"{n} {_ms(v)}" for n, v in result["server_ms_median"].items())


def markdown(batches: list[dict[str, Any]], styles: dict[str, Any], meta: dict[str, Any]) -> str:
    quick = " (--quick: a smoke run, not for quoting)" if meta["quick"] else ""
    lines = [
        f"The HTTP API end to end: a `requests.Session` (keep-alive) posting to the adapter "
        f"under gunicorn ({meta['workers']} worker) in front of the local model server, "
        f"all on one machine ({meta['cpus']} CPUs shared), median and p90 of "
        f"{meta['runs']} round-robin runs after {meta['warmup']} warm-up calls{quick}.",
        "",
        f"(a) {BATCH} images: one batched request (one Predict of {BATCH}) vs "
        f"{BATCH} single-image requests, multipart:",
        "",
        f"| row | contender | ms per {BATCH} images (median) | p90 | images/s "
        f"| batch is | server ms (Server-Timing, median) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in batches:
        for name, result in row["contenders"].items():
            title = row["title"] if name == BATCHED else ""
            label = f"**{name}**" if name == BATCHED else name
            if "error" in result:
                lines.append(
                    f"| {row['row']} {title} | {label} | FAILED: {_cell(result['error'])} |||||"
                )
                continue
            speed = "(reference)" if name == BATCHED else ""
            if name != BATCHED and "vs_reference" in result:
                ratio = result["vs_reference"]
                speed = f"**{ratio:.2f}x faster**" if ratio >= 1 else f"{ratio:.2f}x (slower)"
            lines.append(
                f"| {row['row']} {title} | {label} | {_ms(result['ms_median'])} "
                f"| {_ms(result['ms_p90'])} | {result['images_per_s']:.0f} | {speed} "
                f"| {_server(result)} |"
            )
    lines += [
        "",
        "(b) One image per request (digits.jpg, "
        f"{meta['inputs']['digits.jpg']:,} B, to `digits/detect`): input styles, "
        "then the annotated answer:",
        "",
        "| row | contender | ms (median) | p90 | time vs multipart | answer bytes "
        "| server ms (Server-Timing, median) |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for name, result in styles["contenders"].items():
        title = styles["title"] if name == MULTIPART else ""
        if "error" in result:
            lines.append(
                f"| {styles['row']} {title} | {name} | FAILED: {_cell(result['error'])} |||||"
            )
            continue
        ratio = "(reference)" if name == MULTIPART else f"{result.get('vs_reference', 0):.2f}x"
        lines.append(
            f"| {styles['row']} {title} | {name} | {_ms(result['ms_median'])} "
            f"| {_ms(result['ms_p90'])} | {ratio} | {result['response_bytes']:,} "
            f"| {_server(result)} |"
        )
    lines += [
        "",
        "Each timed call builds its request (multipart body, or base64 + JSON) and reads "
        "the whole answer; server ms are the adapter's own `Server-Timing` (decode: "
        "bytes to model input; inference: the Predict round trip to the model server; "
        "annotate: drawing and encoding the answer image), summed over the call's "
        "requests. The model server is the project's local one (TensorFlow on CPU, "
        "Python gRPC), not TF Serving's C++ binary.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def _panel(
    ax: Any, row: dict[str, Any], reference: str, xlabel: str, title: str, images: int = 1
) -> None:
    """One row's medians as bars, ``reference`` in orange, each labelled with its p90."""
    ok = {n: r for n, r in row["contenders"].items() if "error" not in r}
    if not ok:
        ax.axis("off")
        return
    names = list(ok)
    values = [ok[n]["ms_median"] for n in names]
    colours = [charts.OURS_COLOUR if n == reference else charts.PEER_COLOUR for n in names]
    labels = {}
    for name, value in zip(names, values, strict=True):
        rate = f", {ok[name]['images_per_s']:.0f} img/s" if images > 1 else ""
        labels[value] = f"{_ms(value)} ms (p90 {_ms(ok[name]['ms_p90'])}{rate})"
    charts.bars(ax, names, values, colours, xlabel, text=labels.__getitem__)
    ax.set_xlim(0, max(values) * (2.2 if images > 1 else 1.9))  # room for the labels
    failed = [n for n in row["contenders"] if n not in ok]
    ax.set_title(title + (f"\nFAILED: {', '.join(failed)}" if failed else ""), fontsize=9)


def chart(
    batches: list[dict[str, Any]], styles: dict[str, Any], meta: dict[str, Any], path: Path
) -> None:
    """(a) per row: batch vs one by one; (b): the styles; medians, p90 in the labels."""
    fig, axes = charts.pyplot().subplots(
        1, len(batches) + 1, figsize=(17, 4.2), width_ratios=[1] * len(batches) + [1.4]
    )
    for ax, row in zip(axes, batches, strict=False):
        batched = row["contenders"][BATCHED]
        speed = f"batch {batched['images_per_s']:.0f} img/s" if "error" not in batched else ""
        if "vs_reference" in row["contenders"][ONE_BY_ONE]:
            speed += f", {row['contenders'][ONE_BY_ONE]['vs_reference']:.2f}x faster"
        _panel(
            ax, row, BATCHED, f"ms per {BATCH} images, median (lower is better)",
            f"{row['row']}. {row['title']}\n{speed}", images=BATCH,
        )  # fmt: skip
    _panel(
        axes[-1], styles, MULTIPART, "ms per request, median (lower is better)",
        f"{styles['row']}. {styles['title']}",
    )  # fmt: skip
    quick = charts.QUICK_NOTE if meta["quick"] else ""
    title = (
        f"HTTP API end to end (requests -> gunicorn, 1 worker -> local model server, "
        f"{meta['cpus']} CPUs), median of {meta['runs']} runs "
        f"(orange: the batched request / multipart reference{quick})"
    )
    charts.finish(fig, axes, title, path)


# --------------------------------------------------------------------------- main


def main() -> int:
    """Start the service, time (a) then (b), write the results; 1 if a contender failed."""
    options = parse(__doc__, runs=(5, 100), runs_help="timed calls per contender")
    runs, warmup, out = options.runs, options.warmup, options.out

    print("starting the model server and the adapter (gunicorn, 1 worker) ...", flush=True)
    with running_service(WORK / "api-gunicorn.log") as url, requests.Session() as session:
        batches = []
        for key, title, sample in BATCH_ROWS:
            print(f"row {key}: {title}, {BATCH} images", flush=True)
            contenders = batch_contenders(session, url, sample)
            batches.append(measure_row(key, title, contenders, runs, warmup))
        print(f"row {STYLES_ROW[0]}: {STYLES_ROW[1]}", flush=True)
        styles = measure_row(*STYLES_ROW, style_contenders(session, url), runs, warmup)
    for row in batches:  # one-by-one's vs_reference: how many times faster the batch is
        add_ratios(row, BATCHED, BATCH)
    add_ratios(styles, MULTIPART, 1)

    meta = {
        "runs": runs,
        "warmup": warmup,
        "quick": options.quick,
        "workers": 1,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "inputs": {s.filename: len(s.data()) for s in (DIGITS, SEVEN)},
        "versions": {p: version(p) for p in ("requests", "gunicorn", "flask", "grpcio")},
    }
    text = markdown(batches, styles, meta)
    out.mkdir(parents=True, exist_ok=True)
    (out / "api.md").write_text(text)
    payload = {"meta": meta, "batches": batches, "styles": styles}
    (out / "api.json").write_text(json.dumps(payload, indent=2) + "\n")
    chart(batches, styles, meta, out / "api.png")
    print()
    print(text, end="")
    if options.quick:
        print(f"\n(--quick: written to {out.relative_to(ROOT)}, not bench/results)")
    rows = [*batches, styles]
    return 1 if any("error" in r for row in rows for r in row["contenders"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
