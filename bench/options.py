"""The benchmarks' shared command line: ``--runs N`` and ``--quick``, and where results go."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / ".work"


@dataclass(frozen=True)
class RunOptions:
    """How many timed runs (and warm-up calls) per contender, and where results are written.

    A ``--quick`` smoke run writes to ``bench/.work/quick``, never to ``bench/results``.
    """

    quick: bool
    runs: int
    warmup: int
    out: Path


def parse(
    doc: str | None,
    *,
    runs: tuple[int, int],
    runs_help: str,
    quick_help: str = "a smoke run; results to bench/.work",
) -> RunOptions:
    """Read the command line; ``runs`` is the default (quick, full) number of timed runs."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=None, help=runs_help)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    count = args.runs if args.runs is not None else runs[0 if args.quick else 1]
    if count < 1:
        parser.error("--runs must be at least 1")
    return RunOptions(
        quick=args.quick,
        runs=count,
        warmup=1 if args.quick else 3,
        out=WORK / "quick" if args.quick else RESULTS,
    )
