"""ModelService.GetModelStatus: states per version and TF Serving's NOT_FOUND messages."""

from __future__ import annotations

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

Stub = model_service_pb2_grpc.ModelServiceStub
State = get_model_status_pb2.ModelVersionStatus.State


def status_request(
    name: str, version: int | None = None
) -> get_model_status_pb2.GetModelStatusRequest:
    """A GetModelStatusRequest for ``name`` (and ``version`` if given)."""
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = name
    if version is not None:
        req.model_spec.version.value = version
    return req


def test_available(model_service: Stub) -> None:
    resp = model_service.GetModelStatus(status_request("half_plus_two"), timeout=10)
    [only] = resp.model_version_status
    assert only.version == 1
    assert only.state == State.Value("AVAILABLE")
    assert only.status.error_code == 0
    assert only.status.error_message == ""


def test_all_policy_lists_versions_newest_first(model_service: Stub) -> None:
    resp = model_service.GetModelStatus(status_request("versioned"), timeout=10)
    assert [(s.version, State.Name(s.state)) for s in resp.model_version_status] == [
        (2, "AVAILABLE"),
        (1, "AVAILABLE"),
    ]


def test_specific_policy_serves_only_listed(model_service: Stub) -> None:
    resp = model_service.GetModelStatus(status_request("pinned"), timeout=10)
    assert [s.version for s in resp.model_version_status] == [1]


def test_one_version(model_service: Stub) -> None:
    resp = model_service.GetModelStatus(status_request("versioned", 1), timeout=10)
    assert [s.version for s in resp.model_version_status] == [1]


def test_unknown_version(model_service: Stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        model_service.GetModelStatus(status_request("half_plus_two", 7), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Could not find version 7 of model half_plus_two"


def test_unknown_model(model_service: Stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        model_service.GetModelStatus(status_request("foo"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Could not find any versions of model foo"
