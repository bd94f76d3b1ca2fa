"""Property-based requests from openapi.yaml against the live service (schemathesis).

Schemathesis generates requests for every operation, valid and invalid, and
checks each answer: no server error, and status, content type, headers and
body as the spec documents them; methods the spec doesn't list get a 405
with ``Allow``. Every answer also goes through :mod:`tests.contract`. The
run is bounded and derandomized, so a failure reproduces.
"""

from __future__ import annotations

import io

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.contract import SPEC_FILE, contract_session

MAX_EXAMPLES = 40  # per operation; the whole run takes about 30 s on 2 cores
# The generated model name is nearly always unknown (a 404 before anything else is
# read), so each inference request goes to a demo model of its task instead.
MODELS = {"detect": "digits", "classify": "digit-classes"}

# Loaded from the file (test_openapi.py proves the service serves the same): the
# lazy `schemathesis.pytest.from_fixture` loader breaks on pytest 9 (Function._nodeid).
schema = schemathesis.openapi.from_path(SPEC_FILE)


def _bmp() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), "white").save(buffer, format="BMP")
    return buffer.getvalue()


# Schemathesis has sample files of the other image types, not of BMP.
schemathesis.openapi.media_type("image/bmp", st.just(_bmp()))


@schemathesis.check
def no_server_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """No 5xx, except the documented 504 when the request itself set a (tiny) deadline."""
    asked_deadline = "X-Request-Timeout-Ms" in (case.headers or {})
    if response.status_code < 500 or (response.status_code == 504 and asked_deadline):
        return None
    raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


@pytest.fixture(scope="module")
def session() -> requests.Session:
    """One keep-alive session for the whole run; each answer checked by :mod:`tests.contract`."""
    return contract_session()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_follows_the_spec(
    case: schemathesis.Case, live_url: str, session: requests.Session
) -> None:
    task = case.operation.path.rsplit("/", 1)[-1]
    if task in MODELS:
        case.path_parameters = {**(case.path_parameters or {}), "model": MODELS[task]}
    case.call_and_validate(
        base_url=live_url,
        session=session,
        timeout=30,
        # positive_data_acceptance: a schema-valid request may still be refused, and
        # the spec says so: bytes that are no image (415), a label the model lacks or
        # a version the registry doesn't allow (422). Server errors: no_server_error.
        excluded_checks=[positive_data_acceptance, not_a_server_error],
        additional_checks=[no_server_error],
    )
