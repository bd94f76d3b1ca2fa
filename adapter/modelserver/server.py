"""``tfs-adapter model-server``: a TF-Serving-compatible model server in its own process.

Serves SavedModels laid out like TF Serving's (``<base>/<model>/<version>/saved_model.pb``)
over TF Serving's real gRPC API (PredictionService, ModelService) and, with
``--rest_api_port N``, its HTTP/REST API. Flags mirror ``tensorflow_model_server``
where they make sense (``--rest_api_port``, ``--rest_api_num_threads``,
``--rest_api_timeout_in_ms``, ``--ssl_config_file`` for TLS on the gRPC port).
As in TF Serving, gRPC runs with gRPC's default keepalive policy (clients may
ping at most every 5 minutes without data; two strikes and GOAWAY
``too_many_pings``). Once the initial models are loaded and the ports are bound
it prints ``model server listening on HOST:PORT`` to stdout, then
``model server REST API listening on HOST:PORT`` if the REST API is on; logs go
to stderr. SIGTERM/SIGINT stop it gracefully with exit code 0.

This module imports TensorFlow only inside :func:`main`, after quieting its logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("adapter.modelserver")

DEFAULT_PORT = 8500
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
LISTENING = "model server listening on"
REST_LISTENING = "model server REST API listening on"


_MODEL_FLAGS: list[tuple[str, str]] = [  # exactly one is required
    ("--model_base_path", "serve one model from PATH/<version>/"),
    ("--models_dir", "serve every subdirectory of PATH as a model named after it"),
    ("--model_config_file", "TF Serving text-proto ModelServerConfig"),
]
_MB = DEFAULT_MAX_MESSAGE_BYTES
_FLAGS: list[tuple[str, type, Any, str]] = [  # flag, type, default, help
    ("--port", int, DEFAULT_PORT, "gRPC port (default 8500; 0 picks a free one)"),
    ("--host", str, DEFAULT_HOST, "address to bind (default 127.0.0.1)"),
    ("--model_name", str, None, "name for --model_base_path (default 'default')"),
    ("--file_system_poll_wait_seconds", float, 1.0,
     "seconds between polls for new/removed versions (default 1; 0 = read once)"),
    ("--grpc_max_threads", int, 2 * (os.cpu_count() or 1),
     "request threads (default 2 x CPU cores)"),
    ("--grpc_max_receive_message_bytes", int, _MB, "largest request accepted (default 64 MiB)"),
    ("--grpc_max_send_message_bytes", int, _MB, "largest response sent (default 64 MiB)"),
    ("--grpc_channel_arguments", str, "",
     "extra gRPC server arguments, 'key=value,key=value' (default none)"),
    ("--shutdown_grace_seconds", float, 5.0,
     "on SIGTERM, how long in-flight RPCs may finish (default 5)"),
    ("--rest_api_port", int, 0, "HTTP/REST API port (default 0: no REST API)"),
    ("--rest_api_num_threads", int, 4 * (os.cpu_count() or 1),
     "threads running REST predicts (default 4 x CPU cores)"),
    ("--rest_api_timeout_in_ms", int, 30_000,
     "limit of one REST predict, queueing included (default 30000; 0 = none)"),
    ("--ssl_config_file", str, None,
     "TF Serving SSLConfig text proto: TLS (and mTLS) on the gRPC port (default none)"),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The command line; names and defaults follow tensorflow_model_server where one exists."""
    parser = argparse.ArgumentParser(
        prog="tfs-adapter model-server", description=(__doc__ or "").split("\n")[0]
    )
    models = parser.add_mutually_exclusive_group(required=True)
    for flag, help_text in _MODEL_FLAGS:
        models.add_argument(flag, metavar="PATH", help=help_text)
    for flag, kind, default, help_text in _FLAGS:
        parser.add_argument(flag, type=kind, default=default, help=help_text)
    parser.add_argument(
        "--response_tensor_encoding",
        choices=("content", "field"),
        default="field",
        help="outputs as typed *_val fields (default, as TF Serving does) or tensor_content",
    )
    parser.add_argument(
        "--log_level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level on stderr (default INFO)",
    )
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse and cross-check the flags; exits with status 2 on a usage error."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.model_name is not None and args.model_base_path is None:
        parser.error("--model_name only applies with --model_base_path")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if not 0 <= args.rest_api_port <= 65535:
        parser.error("--rest_api_port must be between 0 and 65535")
    if args.rest_api_port and args.rest_api_port == args.port:
        parser.error("--rest_api_port must be different from --port")
    if args.grpc_max_threads < 1 or args.rest_api_num_threads < 1:
        parser.error("--grpc_max_threads and --rest_api_num_threads must be at least 1")
    if args.rest_api_timeout_in_ms < 0:
        parser.error("--rest_api_timeout_in_ms must not be negative")
    try:
        args.channel_arguments = parse_channel_arguments(args.grpc_channel_arguments)
    except ValueError as exc:
        parser.error(f"--grpc_channel_arguments: {exc}")
    return args


def parse_channel_arguments(text: str) -> list[tuple[str, Any]]:
    """Parse TF Serving's ``key=value,key=value`` list; integer values become ints."""
    result: list[tuple[str, Any]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        result.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return result


def server_options(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """gRPC server arguments: message limits and no port sharing.

    Keepalive is left at gRPC's defaults, as TF Serving leaves it, so clients
    are held to the real policy (see the module docstring).
    """
    return [
        ("grpc.max_receive_message_length", args.grpc_max_receive_message_bytes),
        ("grpc.max_send_message_length", args.grpc_max_send_message_bytes),
        ("grpc.so_reuseport", 0),
        *args.channel_arguments,
    ]


def configure_logging(level: str) -> None:
    """Log to stderr in TF Serving's shape: ``time: L module] message``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d: %(levelname).1s %(module)s.py:%(lineno)d] %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    )
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with TF_CPP_MIN_LOG_LEVEL=2 and its import-time C++ chatter hidden.

    Set TF_CPP_MIN_LOG_LEVEL=0 to see everything. If the import fails, the hidden
    output is replayed before the exception propagates.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import tensorflow  # noqa: F401

        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing logs here, not later
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def make_source(args: argparse.Namespace) -> Any:
    """The model source for whichever of the three model flags was given."""
    from adapter.modelserver import config

    if args.model_config_file:
        return config.load_config_file(args.model_config_file)
    if args.models_dir:
        if not Path(args.models_dir).is_dir():
            log.warning(
                "--models_dir %s is not a directory (yet); serving no models", args.models_dir
            )
        return config.DirectorySource(Path(args.models_dir).resolve())
    return config.single_model(args.model_name or "default", args.model_base_path)


def start_grpc(args: argparse.Namespace, manager: Any, tls: Any = None) -> tuple[Any, int]:
    """Build, bind and start the gRPC server (TLS with ``tls``); returns (server, bound port)."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    from adapter.modelserver.service import ModelService, PredictionService

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.grpc_max_threads, thread_name_prefix="grpc"),
        options=server_options(args),
    )
    prediction = PredictionService(manager, args.response_tensor_encoding)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    try:
        if tls is None:
            port = server.add_insecure_port(f"{host}:{args.port}")
        else:
            port = server.add_secure_port(f"{host}:{args.port}", tls)
    except RuntimeError:
        port = 0
    if not port:
        raise OSError(f"Failed to BuildAndStart gRPC server: cannot bind {host}:{args.port}")
    server.start()
    return server, port


def install_signal_handlers(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT set ``stop`` instead of killing the process."""

    def handler(signum: int, _frame: object) -> None:
        log.info("Received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the model server until SIGTERM/SIGINT; 0 on a clean stop, 1 on a startup error."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.log_level)
    stop = threading.Event()
    install_signal_handlers(stop)
    import_tensorflow_quietly()
    from adapter.modelserver import savedmodel
    from adapter.modelserver.config import ConfigError
    from adapter.modelserver.servables import ServableManager

    servers: list[Any] = []
    try:
        tls = read_tls(args)
        manager = ServableManager(
            make_source(args), savedmodel.load, args.file_system_poll_wait_seconds
        )
        manager.poll_once()
        if stop.is_set():
            return 0
        grpc_server, port = start_grpc(args, manager, tls)
        servers.append(grpc_server)
        rest_server = start_rest_api(args, manager)
    except (ConfigError, OSError) as exc:
        log.error("Failed to start server. Error: %s", exc)
        for server in servers:
            server.stop(0)
        return 1
    manager.start()
    log.info("Running gRPC ModelServer at %s:%d ...", args.host, port)
    print(f"{LISTENING} {args.host}:{port}", flush=True)
    if rest_server is not None:
        log.info("Exporting HTTP/REST API at:%s:%d ...", args.host, rest_server.port)
        print(f"{REST_LISTENING} {args.host}:{rest_server.port}", flush=True)
    while not stop.wait(0.5):
        pass
    manager.stop()
    stopped = grpc_server.stop(args.shutdown_grace_seconds)
    if rest_server is not None:
        rest_server.stop(args.shutdown_grace_seconds)
    stopped.wait()
    log.info("Model server stopped")
    return 0


def read_tls(args: argparse.Namespace) -> Any:
    """gRPC server credentials from ``--ssl_config_file``, or None for plaintext."""
    if not args.ssl_config_file:
        return None
    from adapter.modelserver import tls

    return tls.server_credentials(tls.load_ssl_config(args.ssl_config_file))


def start_rest_api(args: argparse.Namespace, manager: Any) -> Any:
    """Start the REST API on ``--rest_api_port`` (None when it is 0)."""
    if not args.rest_api_port:
        return None
    from adapter.modelserver.rest import start_rest

    return start_rest(args.host, args.rest_api_port, manager, args)


if __name__ == "__main__":
    exit_code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)  # skip ~1 s of TensorFlow interpreter teardown; all state is flushed
