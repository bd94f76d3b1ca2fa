"""The serving process: ``ADAPTER_*`` parsing, CPU-derived defaults, the config gunicorn loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.config import (
    ConfigError,
    ServerSettings,
    available_cpus,
    load_server_settings,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"


def test_defaults_come_from_the_cpus() -> None:
    assert load_server_settings({}, cpus=1) == ServerSettings(workers=2)
    assert load_server_settings({}, cpus=6).workers == 6
    server = load_server_settings({}, cpus=4)
    assert (server.threads, server.timeout_s, server.graceful_timeout_s) == (4, 30, 20)
    assert (server.admission_queue, server.pool_threads) == (4, 12)  # the queue as deep as threads
    assert (server.max_requests, server.max_requests_jitter, server.keepalive_s) == (2000, 200, 5)
    assert server.log_format == "json"
    assert load_server_settings({}).workers == max(2, available_cpus())


def test_every_variable_is_read() -> None:
    env = {
        "ADAPTER_BIND": "127.0.0.1:9000",
        "ADAPTER_WORKERS": "3",
        "ADAPTER_THREADS": "8",
        "ADAPTER_ADMISSION_QUEUE": "2",
        "ADAPTER_WORKER_TIMEOUT_S": "60",
        "ADAPTER_GRACEFUL_TIMEOUT_S": "0",
        "ADAPTER_KEEPALIVE_S": "2",
        "ADAPTER_MAX_REQUESTS": "500",
        "ADAPTER_MAX_REQUESTS_JITTER": "25",
        "ADAPTER_LOG_FORMAT": " Text ",
    }
    assert load_server_settings(env, cpus=16) == ServerSettings(
        bind="127.0.0.1:9000",
        workers=3,
        threads=8,
        admission_queue=2,
        timeout_s=60,
        graceful_timeout_s=0,
        keepalive_s=2,
        max_requests=500,
        max_requests_jitter=25,
        log_format="text",
    )


def test_jitter_defaults_to_a_tenth_and_zero_max_requests_disables_recycling() -> None:
    assert load_server_settings({"ADAPTER_MAX_REQUESTS": "1000"}, cpus=2).max_requests_jitter == 100
    off = load_server_settings(
        {"ADAPTER_MAX_REQUESTS": "0", "ADAPTER_MAX_REQUESTS_JITTER": "50"}, cpus=2
    )
    assert (off.max_requests, off.max_requests_jitter) == (0, 0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ADAPTER_WORKERS", "0"),
        ("ADAPTER_THREADS", "many"),
        ("ADAPTER_WORKER_TIMEOUT_S", "0"),
        ("ADAPTER_GRACEFUL_TIMEOUT_S", "-1"),
        ("ADAPTER_KEEPALIVE_S", "-1"),
        ("ADAPTER_MAX_REQUESTS", "-5"),
        ("ADAPTER_MAX_REQUESTS_JITTER", "-1"),
        ("ADAPTER_LOG_FORMAT", "xml"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_server_settings({name: value}, cpus=2)


def test_the_app_settings_share_the_log_format() -> None:
    assert load_settings({}).log_format == "json"
    assert load_settings({"ADAPTER_LOG_FORMAT": "text"}).log_format == "text"
    with pytest.raises(ConfigError, match="ADAPTER_LOG_FORMAT"):
        load_settings({"ADAPTER_LOG_FORMAT": "yaml"})


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs -> 2
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_a_cgroup_cpu_quota_caps_the_cpus(
    tmp_path: Path, files: dict[str, str], limit: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    usable = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == (usable if limit is None else min(usable, limit))


def _config_values(config: str, env: dict[str, str]) -> dict[str, object]:
    """The settings gunicorn reads from ``config``, loaded in a fresh interpreter."""
    probe = (
        "import json, os\n"
        "from gunicorn.app.base import Application\n"
        "from gunicorn.config import KNOWN_SETTINGS\n"
        "class App(Application):\n"
        "    def init(self, *args): pass\n"
        "    def load(self): pass\n"
        f"values = App().load_config_from_module_name_or_filename({config!r})\n"
        "names = {setting.name for setting in KNOWN_SETTINGS}\n"
        "out = {k: v for k, v in values.items() if k in names}\n"
        "out = {k: f'{v.__module__}.{v.__name__}' if callable(v) else v for k, v in out.items()}\n"
        "out['PROMETHEUS_MULTIPROC_DIR'] = os.environ['PROMETHEUS_MULTIPROC_DIR']\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    loaded: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_the_deploy_config_is_the_packaged_one(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_123.db").write_bytes(b"old")
    env = {
        "ADAPTER_WORKERS": "3",
        "ADAPTER_THREADS": "5",
        "ADAPTER_MAX_REQUESTS": "100",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    deploy = _config_values(str(DEPLOY_CONFIG), env)
    packaged = _config_values("python:adapter.gunicorn_conf", env)
    assert deploy == packaged
    expected = {
        "worker_class": "adapter.worker.BufferingWorker",
        "workers": 3,
        "threads": 15,  # 5 working, 5 waiting, 5 for requests without a body (health checks)
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "max_requests": 100,
        "max_requests_jitter": 10,
        "preload_app": False,
        "worker_tmp_dir": "/dev/shm",
        "logger_class": "adapter.accesslog.JsonLogger",
        "accesslog": "-",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    assert {name: deploy.get(name) for name in expected} == expected
    for hook in ("child_exit", "on_exit", "post_worker_init"):
        assert deploy[hook] == f"adapter.gunicorn_conf.{hook}"
    assert list(metrics.iterdir()) == []  # the last run's counts are gone


def test_an_unset_metrics_dir_becomes_a_fresh_temporary_one(tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    env_without = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    probe = "import os, adapter.gunicorn_conf; print(os.environ['PROMETHEUS_MULTIPROC_DIR'])"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env_without, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    made = Path(result.stdout.strip())
    assert made.parent == tmp_path and made.is_dir() and not any(made.iterdir())


def test_gunicorn_checks_the_deploy_config(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", str(DEPLOY_CONFIG)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_freed_memory_is_kept_for_reuse_on_glibc_up_to_its_ceiling() -> None:
    import platform

    from adapter.process import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    # glibc refuses a threshold over 32 MiB; the function caps it instead.
    assert keep_freed_memory(20 * 1024 * 1024)
    assert keep_freed_memory(1 << 40)
