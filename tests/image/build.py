"""Build the adapter's image with podman, from Debian's packages only (no registry pulls).

- **The base**: ``debootstrap --variant=minbase`` of Debian bookworm with
  ``python3``, ``python3-pip`` and ``python-is-python3``, imported as
  ``localhost/tfs-adapter-base:bookworm``. It stands in for
  ``python:3.11-slim-bookworm``: the same Debian release and Python minor, and,
  like that image, no ``EXTERNALLY-MANAGED`` marker, so ``pip install`` works
  as the Dockerfile runs it. Made once per machine (podman keeps it).
- **The wheels**: the adapter's, built by ``pip wheel`` (maturin), and its
  dependencies' from PyPI by ``pip download``, into a build context holding
  only them and ``deploy/`` (the ``prebuilt`` stage of ``deploy/Dockerfile``).
- **The image**: ``podman build --target runtime`` of ``deploy/Dockerfile`` with
  ``PYTHON_IMAGE`` set to that base, ``WHEELS=prebuilt`` and
  ``PIP_NO_INDEX=1``, without network: the very runtime stage the real image
  is built from.

podman runs everything with ``runc`` (``crun`` cannot use this kind of
machine's hybrid cgroups) and explicit ``--ulimit`` values within the host's
hard limits.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/tfs-adapter-base:bookworm"
IMAGE = "localhost/tfs-adapter:image-test"
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-pip", "python-is-python3")
RUNTIME = ("--runtime", "runc")
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")


def podman(*args: str, timeout_s: float = 600, check: bool = True) -> str:
    """Run ``podman ARGS``; its stdout (stderr joined on failure)."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr[-3000:]}")
    return result.stdout


def ensure_base(work: Path) -> str:
    """The debootstrap base image, made now if podman does not have it yet."""
    if subprocess.run(["podman", "image", "exists", BASE], check=False).returncode == 0:
        return BASE
    rootfs = work / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
         SUITE, str(rootfs), MIRROR],
        check=True, capture_output=True, timeout=1200,
    )  # fmt: skip
    (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["podman", "import", "--quiet", "-", BASE], stdin=tar.stdout, check=True, timeout=600
    )
    assert tar.wait() == 0
    shutil.rmtree(rootfs, ignore_errors=True)
    return BASE


def build_context(work: Path) -> Path:
    """A build context with ``deploy/`` and ``dist/``: the adapter's wheel and its dependencies'."""
    context = work / "context"
    shutil.rmtree(context, ignore_errors=True)
    (context / "deploy").mkdir(parents=True)
    for name in ("Dockerfile", "gunicorn.conf.py"):
        shutil.copy(ROOT / "deploy" / name, context / "deploy" / name)
    dist = context / "dist"
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(dist), str(ROOT)],
        check=True, timeout=1800,
    )  # fmt: skip
    (wheel,) = dist.glob("tfs_adapter-*.whl")
    subprocess.run(
        [*pip, "download", "--only-binary=:all:", "--dest", str(dist), str(wheel)],
        check=True, timeout=600,
    )  # fmt: skip
    return context


def build_image(work: Path) -> str:
    """The runtime stage of ``deploy/Dockerfile`` on the debootstrap base; its tag."""
    base = ensure_base(work)
    context = build_context(work)
    podman(
        "build", *RUNTIME, *ULIMITS, "--network", "none", "--target", "runtime",
        "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", "WHEELS=prebuilt",
        "--build-arg", "PIP_NO_INDEX=1",
        "-f", str(context / "deploy" / "Dockerfile"), "-t", IMAGE, str(context),
    )  # fmt: skip
    return IMAGE
