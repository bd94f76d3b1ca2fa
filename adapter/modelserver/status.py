"""TF Serving's error statuses: the gRPC code and the exact message text for each failure.

Every message here is copied from TensorFlow Serving 2.x (or TensorFlow itself where
TF Serving passes TensorFlow's status through); the source file is named next to
each constructor. This module does not import TensorFlow: TF exceptions are
recognised by their ``error_code`` attribute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import grpc

# tensorflow_serving/model_servers/grpc_status_util.cc: ToGRPCStatus().
MESSAGE_LIMIT = 1024
TRUNCATED_SUFFIX = "...TRUNCATED"

_CODES_BY_VALUE: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


class ServingError(Exception):
    """A request failure carrying the gRPC status code and TF Serving's message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        """Keep ``code`` and ``message``; ``str(err)`` is the message."""
        super().__init__(message)
        self.code = code
        self.message = message

    def grpc_details(self) -> str:
        """The message as TF Serving sends it: cut at 1024 characters + ``...TRUNCATED``."""
        return truncate(self.message)


def truncate(message: str) -> str:
    """Cut ``message`` like ToGRPCStatus(): at most 1024 chars, then ``...TRUNCATED``."""
    if len(message) > MESSAGE_LIMIT:
        return message[:MESSAGE_LIMIT] + TRUNCATED_SUFFIX
    return message


def _join(keys: Iterable[str]) -> str:
    """Join a key set like absl::StrJoin over a std::set: sorted, comma-separated."""
    return ",".join(sorted(keys))


# --- model spec / servable lookup (core/manager.h, model_servers/server_core.cc) ---


def missing_model_spec() -> ServingError:
    """INVALID_ARGUMENT ``Missing ModelSpec`` (predict_impl.cc, get_model_*_impl.cc)."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")


def no_model_name() -> ServingError:
    """INVALID_ARGUMENT for an empty model name (ServerCore::ServableRequestFromModelSpec)."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")


def servable_not_found(name: str, version: int | None) -> ServingError:
    """NOT_FOUND ``Servable not found for request: Latest(x)`` / ``Specific(x, 7)``."""
    request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")


def unrecognized_label(label: str) -> ServingError:
    """INVALID_ARGUMENT for an unknown version label (ServerCore::GetModelVersionForLabel)."""
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}"
    )


# --- Predict (servables/tensorflow/predict_util.cc, tensorflow/cc/saved_model/util.cc) ---


def signature_not_found(signature_name: str) -> ServingError:
    """FAILED_PRECONDITION ``Serving signature key "x" not found.`` (RunPredict)."""
    return ServingError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f'Serving signature key "{signature_name}" not found.',
    )


def input_size_mismatch(request_keys: Iterable[str], signature_keys: Iterable[str]) -> ServingError:
    """INVALID_ARGUMENT from VerifyRequestInputsSize(): lists extra and missing aliases."""
    sent, wanted = set(request_keys), set(signature_keys)
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"input size does not match signature: {len(sent)}!={len(wanted)} "
        f"len({{{_join(sent)}}}) != len({{{_join(wanted)}}}). "
        f"Sent extra: {{{_join(sent - wanted)}}}. "
        f"Missing but required: {{{_join(wanted - sent)}}}.",
    )


def input_alias_missing(
    alias: str, feed_name: str, request_keys: Iterable[str], default_keys: Iterable[str]
) -> ServingError:
    """INVALID_ARGUMENT from saved_model::GetInputValues() for a signature input not sent."""
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Signature input alias: {alias}(feed name: {feed_name}) not found in request "
        f"and no default value provided. Inputs expected to be in the request "
        f"{{{_join(request_keys)}}}, or default input alias set: {_join(default_keys)}",
    )


def tensor_parsing_error(alias: str) -> ServingError:
    """INVALID_ARGUMENT ``tensor parsing error: x`` when Tensor::FromProto() fails."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"tensor parsing error: {alias}")


def invalid_input_names(used: Iterable[str], request_keys: Iterable[str]) -> ServingError:
    """INVALID_ARGUMENT from GetInputValues() when the request names unknown inputs."""
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Inputs contains invalid name. Used request inputs: {_join(used)}, "
        f"request input: {_join(request_keys)}",
    )


def output_alias_not_found(alias: str, output_keys: Iterable[str]) -> ServingError:
    """INVALID_ARGUMENT for an ``output_filter`` entry the signature lacks."""
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"output tensor alias not found in signature: {alias} "
        f"Outputs expected to be in the set {{{_join(output_keys)}}}.",
    )


def duplicate_output_alias(alias: str) -> ServingError:
    """INVALID_ARGUMENT for an ``output_filter`` naming one output twice."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"duplicate output tensor alias: {alias}")


def dtype_mismatch(index: int, expected: str, provided: str) -> ServingError:
    """INVALID_ARGUMENT ``Expects arg[0] to be float but string is provided`` (call frame)."""
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Expects arg[{index}] to be {expected} but {provided} is provided",
    )


# --- GetModelMetadata (servables/tensorflow/get_model_metadata_impl.cc) ---


def no_metadata_field() -> ServingError:
    """INVALID_ARGUMENT when ``metadata_field`` is empty."""
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field",
    )


def metadata_field_not_supported(field: str) -> ServingError:
    """INVALID_ARGUMENT for a field other than ``signature_def``.

    TF Serving builds this with errors::InvalidArgument(), which concatenates its
    arguments, so the ``%s`` stays literal and the field name is appended.
    """
    return ServingError(
        grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field %s is not supported{field}"
    )


# --- GetModelStatus (model_servers/get_model_status_impl.cc) ---


def version_status_not_found(version: int, model: str) -> ServingError:
    """NOT_FOUND ``Could not find version 7 of model foo``."""
    return ServingError(
        grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {model}"
    )


def model_status_not_found(model: str) -> ServingError:
    """NOT_FOUND ``Could not find any versions of model foo``."""
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {model}")


def unimplemented(method: str) -> ServingError:
    """UNIMPLEMENTED for the TF Serving APIs this server does not provide."""
    return ServingError(
        grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented by this model server"
    )


# --- TensorFlow runtime errors ---

_GRAPH_ERROR_HEADER = re.compile(r"^Graph execution error:\s*")
_DETECTED_AT = re.compile(
    r"Detected at node .*? defined at \(most recent call last\):\n"
    r"(?:<stack traces unavailable>\n|[ \t]+.*\n)*"
)
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]\s*(name: .*)?$")


def clean_tf_message(message: str) -> str:
    """Strip the Python-side decoration TF adds to a runtime error, keeping the C++ message.

    Removes ``Graph execution error:``, ``Detected at node ... defined at`` blocks
    with their stack lines and the trailing ``[Op:__inference_...]``, so the client
    sees what TF Serving's session would report (e.g. ``In[0] ndims must be >= 2``).
    """
    text = _GRAPH_ERROR_HEADER.sub("", message)
    text = _DETECTED_AT.sub("", text)
    text = _OP_SUFFIX.sub("", text)
    return text.strip() or "TensorFlow error"


def from_exception(exc: BaseException) -> ServingError:
    """Map an exception raised while running a model to a status; never a traceback.

    TensorFlow ``OpError``s keep their own code (INVALID_ARGUMENT stays
    INVALID_ARGUMENT) and their cleaned message; anything else is INTERNAL with the
    exception's first line.
    """
    if isinstance(exc, ServingError):
        return exc
    error_code = getattr(exc, "error_code", None)
    tf_message = getattr(exc, "message", None)
    if isinstance(error_code, int) and isinstance(tf_message, str):
        code = _CODES_BY_VALUE.get(error_code, grpc.StatusCode.UNKNOWN)
        if code is grpc.StatusCode.OK:
            code = grpc.StatusCode.UNKNOWN
        return ServingError(code, clean_tf_message(tf_message))
    first_line = (str(exc).strip().splitlines() or [""])[0]
    detail = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    return ServingError(grpc.StatusCode.INTERNAL, detail)
