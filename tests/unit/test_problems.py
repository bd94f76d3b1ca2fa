"""The HTTP edge's one table: every domain exception a client can meet has a status and a type."""

from __future__ import annotations

import inspect

import pytest

from adapter import exceptions, imaging
from adapter.api import problems

STARTUP_ONLY = {exceptions.ConfigError}  # stops the process before any request


def domain_exceptions() -> list[type[Exception]]:
    found = [
        cls
        for module in (exceptions, imaging)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == module.__name__
    ]
    return [cls for cls in found if cls not in STARTUP_ONLY]


def make(cls: type[Exception]) -> Exception:
    if issubclass(cls, exceptions.InvalidOption):
        return cls("No such label.", field="labels", reason="Unknown label(s): 'cat'.")
    return cls("model server at 10.0.0.7:8500 answered oddly")


@pytest.mark.parametrize("cls", domain_exceptions(), ids=lambda cls: cls.__name__)
def test_every_domain_exception_has_a_problem(cls: type[Exception]) -> None:
    problem = problems.from_exception(make(cls))
    assert problem is not None, f"{cls.__name__} has no row in DOMAIN_PROBLEMS"
    body = problem.to_problem("/v1/models/digits:detect")
    assert 400 <= body["status"] < 600
    assert body["type"].startswith(problems.PROBLEM_TYPE_BASE)
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == "/v1/models/digits:detect"


@pytest.mark.parametrize(
    ("exc", "status", "slug"),
    [
        (imaging.EmptyImage("empty"), 400, "invalid-image"),
        (imaging.UnsupportedImage("no"), 415, "unsupported-image"),
        (imaging.ImageTooLarge("40000 pixels wide"), 413, "image-too-large"),
        (imaging.CorruptImage("truncated"), 400, "invalid-image"),
        (
            exceptions.ModelRejectedImage("The model could not decode this image."),
            400,
            "invalid-image",
        ),
        (exceptions.UnknownModel("no such model"), 404, "unknown-model"),
        (exceptions.WrongTask("a classifier"), 404, "not-found"),
        (exceptions.ModelVersionNotFound("version 9"), 404, "model-version-not-found"),
        (exceptions.Overloaded("at capacity"), 503, "overloaded"),
        (exceptions.BackendOverloaded("busy"), 503, "backend-overloaded"),
        (exceptions.CircuitOpen("paused"), 503, "backend-circuit-open"),
        (exceptions.BackendUnavailable("down"), 503, "backend-unavailable"),
        (exceptions.ModelNotServed("loading"), 503, "model-not-served"),
        (exceptions.ModelNotReady("mismatch"), 503, "model-not-ready"),
        (exceptions.BackendTimeout("slow"), 504, "backend-timeout"),
        (exceptions.BackendRejected("no"), 502, "backend-rejected-request"),
        (exceptions.BackendMessageTooLarge("big"), 502, "backend-message-too-large"),
        (exceptions.BackendError("odd"), 502, "backend-error"),
    ],
)
def test_the_most_specific_row_wins(exc: Exception, status: int, slug: str) -> None:
    body = problems.to_problem(exc)
    assert (body["status"], body["type"]) == (status, problems.PROBLEM_TYPE_BASE + slug)


def test_unavailable_says_when_to_retry() -> None:
    problem = problems.from_exception(exceptions.ModelNotReady("later", retry_after_s=30))
    assert problem is not None
    assert problem.headers == {"Retry-After": "30"}


def test_an_invalid_option_names_its_field() -> None:
    body = problems.to_problem(make(exceptions.InvalidOption))
    assert body["errors"] == {"labels": ["Unknown label(s): 'cat'."]}


def test_a_bug_is_an_internal_error_that_says_nothing() -> None:
    body = problems.to_problem(KeyError("/srv/models/secret.yaml"))
    assert body["status"] == 500
    assert "secret" not in str(body)
