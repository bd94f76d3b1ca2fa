"""Status mapping without a server: TF errors keep their code, lose their Python decoration."""

from __future__ import annotations

import grpc
import tensorflow as tf

from adapter.modelserver import status

DECORATED = (
    "Graph execution error:\n\n"
    "Detected at node 'add' defined at (most recent call last):\n"
    '  File "/srv/model.py", line 12, in <module>\n'
    "    y = f(x)\n"
    '  File "/srv/model.py", line 8, in f\n'
    "    return x + w\n"
    "Node: 'add'\n"
    "Incompatible shapes: [3] vs. [2]\n"
    "\t [[{{node add}}]] [Op:__inference_signature_wrapper_42]"
)


def test_tf_error_keeps_code_and_drops_stack() -> None:
    err = status.from_exception(tf.errors.InvalidArgumentError(None, None, DECORATED))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.message == "Node: 'add'\nIncompatible shapes: [3] vs. [2]\n\t [[{{node add}}]]"


def test_other_tf_codes_map_by_value() -> None:
    err = status.from_exception(tf.errors.ResourceExhaustedError(None, None, "OOM"))
    assert (err.code, err.message) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OOM")


def test_python_exception_is_internal_one_line() -> None:
    err = status.from_exception(ValueError("boom\nsecond line"))
    assert err.code == grpc.StatusCode.INTERNAL
    assert err.message == "ValueError: boom"


def test_long_messages_are_truncated_like_tf_serving() -> None:
    err = status.ServingError(grpc.StatusCode.INVALID_ARGUMENT, "x" * 2000)
    assert err.grpc_details() == "x" * 1024 + "...TRUNCATED"


def test_input_size_message_sorts_like_std_set() -> None:
    err = status.input_size_mismatch(["b", "a", "z"], ["a", "c"])
    assert err.message == (
        "input size does not match signature: 3!=2 len({a,b,z}) != len({a,c}). "
        "Sent extra: {b,z}. Missing but required: {c}."
    )
