"""Servable versions: discovering version directories, loading, unloading, and polling.

A :class:`ServableManager` plays the part of TF Serving's file-system source plus
its AspiredVersionsManager with the availability-preserving policy: every poll it
lists ``<base>/<model>/<N>/`` (numeric names only), loads the versions the model's
policy aspires to, and unloads the others once an aspired version is available
(or at once when their directory is gone). Loads run on the poller thread, never
on a request thread; a failed load (e.g. a half-written directory) is logged and
retried on later polls, backing off up to 30 s while it keeps failing.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from adapter.modelserver import status
from adapter.modelserver.config import ModelConfig, ModelSource

log = logging.getLogger("adapter.modelserver")

_VERSION_DIR = re.compile(r"^\d+$")

Loader = Callable[[str, int, Path], Any]

MAX_RETRY_DELAY = 30.0  # seconds between load attempts of a version that keeps failing


@dataclass
class VersionState:
    """A version's manager state (LOADING/AVAILABLE/UNLOADING/END) and its health status."""

    state: str
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


@dataclass
class _Failure:
    """The last load error of a version, how many attempts failed, when to try again."""

    message: str
    attempts: int
    retry_at: float


def servable_id(name: str, version: int) -> str:
    """Format a servable id as TF Serving logs it: ``{name: x version: 2}``."""
    return f"{{name: {name} version: {version}}}"


def scan_versions(base_path: Path) -> dict[int, Path]:
    """Map version number → directory for the numeric subdirectories of ``base_path``."""
    found: dict[int, Path] = {}
    with os.scandir(base_path) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if _VERSION_DIR.match(entry.name) and entry.is_dir():
                found.setdefault(int(entry.name), Path(entry.path))
    return found


class ServableManager:
    """Keeps each model's loaded versions in line with the disk; thread-safe lookups.

    ``loader(name, version, path)`` returns the loaded servable (anything with the
    attributes the request handlers use). ``poll_wait_seconds`` defaults to 1; 0
    means the disk is read once, at :meth:`poll_once` before serving.
    """

    def __init__(self, source: ModelSource, loader: Loader, poll_wait_seconds: float = 1.0):
        """Create the manager; nothing is loaded until :meth:`poll_once`."""
        self._source = source
        self._loader = loader
        self._poll_wait = poll_wait_seconds
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._configs: dict[str, ModelConfig] = {}
        self._loaded: dict[str, dict[int, Any]] = {}
        self._status: dict[str, dict[int, VersionState]] = {}
        self._failures: dict[tuple[str, int], _Failure] = {}
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- polling -----------------------------------------------------------------

    def poll_once(self) -> None:
        """Read the model list and the disk once; load and unload to match the policies."""
        with self._poll_lock:
            configs = {c.name: c for c in self._source.configs()}
            with self._lock:
                removed = set(self._configs) - set(configs)
                self._configs = configs
            for name in sorted(removed):
                for version in sorted(self._loaded.get(name, {})):
                    self._unload(name, version)
            for config in configs.values():
                if self._stop.is_set():
                    return
                self._sync_model(config)

    def _sync_model(self, config: ModelConfig) -> None:
        """Bring one model's loaded versions in line with its policy and the disk."""
        on_disk = self._scan(config)
        if on_disk is None:  # unreadable base path: keep serving what is loaded, as TF Serving
            return
        aspired = config.policy.select(on_disk)
        for key in [k for k in self._failures if k[0] == config.name and k[1] not in aspired]:
            del self._failures[key]  # a re-created directory gets a fresh first attempt
        for version in sorted(aspired - set(self._loaded.get(config.name, {})), reverse=True):
            self._load(config.name, version, on_disk[version])
        loaded = set(self._loaded.get(config.name, {}))
        preserve = not (aspired & loaded)
        for version in sorted(loaded - aspired):
            if version not in on_disk or not preserve:
                self._unload(config.name, version)

    def _scan(self, config: ModelConfig) -> dict[int, Path] | None:
        """List the model's version dirs (None if unreadable), warning once when there are none."""
        try:
            on_disk = scan_versions(config.base_path)
        except OSError as exc:
            self._warn_once(
                config.name,
                "FileSystemStoragePathSource encountered a filesystem access error: "
                f"Could not find base path {config.base_path} for servable {config.name} "
                f"with error {exc.strerror or exc}",
            )
            return None
        if not on_disk:
            self._warn_once(
                config.name,
                f"No versions of servable {config.name} found under base path "
                f"{config.base_path}. Did you forget to name your leaf directory as a "
                "number (eg. '/1/')?",
            )
        else:
            self._warned.discard(config.name)
        return on_disk

    def _warn_once(self, name: str, message: str) -> None:
        """Log ``message`` once per episode of a model having nothing to serve."""
        if name not in self._warned:
            self._warned.add(name)
            log.warning(message)

    def _set_status(self, name: str, version: int, state: VersionState) -> None:
        """Record a version's state for GetModelStatus."""
        with self._lock:
            self._status.setdefault(name, {})[version] = state

    def _load(self, name: str, version: int, path: Path) -> None:
        """Load one version; on failure record END + error and retry on a later poll."""
        sid = servable_id(name, version)
        failure = self._failures.get((name, version))
        if failure is not None and time.monotonic() < failure.retry_at:
            return
        if failure is None:
            log.info("Loading servable version %s from %s", sid, path)
        self._set_status(name, version, VersionState("LOADING"))
        try:
            servable = self._loader(name, version, path)
        except Exception as exc:  # a half-written or broken export must not kill the server
            self._record_failure(name, version, status.from_exception(exc), failure)
            return
        self._failures.pop((name, version), None)
        with self._lock:
            self._loaded.setdefault(name, {})[version] = servable
            self._status.setdefault(name, {})[version] = VersionState("AVAILABLE")
        log.info("Successfully loaded servable version %s", sid)

    def _record_failure(
        self, name: str, version: int, err: status.ServingError, previous: _Failure | None
    ) -> None:
        """Mark the version END with its error, log a new error once, schedule the retry.

        Retries back off from one poll interval, doubling up to MAX_RETRY_DELAY seconds.
        """
        self._set_status(name, version, VersionState("END", err.code, err.message))
        attempts = 1 if previous is None else previous.attempts + 1
        delay = min(self._poll_wait * 2 ** (attempts - 1), MAX_RETRY_DELAY)
        if previous is None or previous.message != err.message:
            sid = servable_id(name, version)
            log.error("Loading servable: %s failed: %s: %s", sid, err.code.name, err.message)
            log.info("Will retry loading %s on a later file-system poll", sid)
        self._failures[(name, version)] = _Failure(err.message, attempts, time.monotonic() + delay)

    def _unload(self, name: str, version: int) -> None:
        """Stop serving one version; requests already holding it finish normally."""
        sid = servable_id(name, version)
        with self._lock:
            servable = self._loaded.get(name, {}).pop(version, None)
            self._status.setdefault(name, {})[version] = VersionState("UNLOADING")
        log.info("Unloading servable version %s", sid)
        del servable
        self._set_status(name, version, VersionState("END"))
        log.info("Done unloading servable version %s", sid)

    def start(self) -> None:
        """Start the background poller (no-op when the poll wait is 0)."""
        if self._poll_wait <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="fs-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Poll until stopped; an unexpected error is logged and polling goes on."""
        while not self._stop.wait(self._poll_wait):
            try:
                self.poll_once()
            except Exception:
                log.exception("File-system poll failed; will retry")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the poller, waiting up to ``timeout`` seconds for a load in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- lookups (request threads) -------------------------------------------------

    def resolve(self, name: str, version: int | None, label: str | None) -> Any:
        """Return the servable for a ModelSpec, raising TF Serving's errors.

        ``label`` wins over ``version`` only when set (the proto makes them a oneof);
        with neither, the highest available version is used (``Latest(name)``).
        """
        if not name:
            raise status.no_model_name()
        with self._lock:
            if label is not None:
                labels = self._configs[name].labels if name in self._configs else {}
                if label not in labels:
                    raise status.unrecognized_label(label)
                version = labels[label]
            versions = self._loaded.get(name, {})
            if version is None:
                if versions:
                    return versions[max(versions)]
            elif version in versions:
                return versions[version]
        raise status.servable_not_found(name, version)

    def version_statuses(self, name: str) -> dict[int, VersionState]:
        """Every version this model has had, newest first, with its current state."""
        with self._lock:
            known = dict(self._status.get(name, {}))
        return dict(sorted(known.items(), reverse=True))
