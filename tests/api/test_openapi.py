"""openapi.yaml is a valid OpenAPI 3.1 document, served with its docs, and its examples are real."""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import swagger_ui_bundle
import yaml
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from werkzeug.test import TestResponse

from adapter.api import problems
from tests.contract import SPEC_FILE, ContractError, check, spec
from tests.helpers import box_tuple, iou, upload

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "adapter" / "demo" / "samples"
DIGITS = (SAMPLES / "digits.jpg").read_bytes()
SEVEN = (SAMPLES / "seven.png").read_bytes()
HELLO = b"hello"
README = (ROOT / "README.md").read_bytes()


def test_the_spec_is_valid_openapi_3_1() -> None:
    assert spec()["openapi"] == "3.1.0"
    validate(spec())


def test_the_service_serves_the_spec(client: FlaskClient) -> None:
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.get_data()) == yaml.safe_load(SPEC_FILE.read_bytes())


class _Assets(HTMLParser):
    """The URLs a page loads: script ``src`` and link ``href``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def test_the_docs_page_loads_everything_from_the_service(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert not re.search(r"https?:|//[a-z]", html, re.IGNORECASE)  # no CDN, no outside URL
    parser = _Assets()
    parser.feed(html)
    assert len(parser.urls) >= 4  # Swagger UI's script, preset, style sheet, initializer
    for url in parser.urls:
        assert url.startswith("/docs/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.get_data()
    initializer = next(url for url in parser.urls if url.endswith("initializer.js"))
    script = client.get(initializer).get_data(as_text=True)
    assert '"/openapi.yaml"' in script
    assert not re.search(r"https?:", script)


def test_the_docs_page_can_render_openapi_3_1() -> None:
    # Swagger UI refuses `openapi: 3.1.x` documents before version 5.
    version = Path(str(swagger_ui_bundle.swagger_ui_path)).name.removeprefix("swagger-ui-")
    assert int(version.split(".")[0]) >= 5, f"swagger-ui-bundle ships Swagger UI {version}"


def test_an_asset_that_is_not_swagger_uis_is_not_served(client: FlaskClient) -> None:
    response = client.get("/docs/swagger-ui-bundle.js.map")
    assert response.status_code == 404


def _slugs(kind: type[problems.ApiError]) -> Iterator[str]:
    """Every problem type the service can answer: the HTTP tree's and the domain table's."""
    yield kind.slug
    for sub in kind.__subclasses__():
        yield from _slugs(sub)
    if kind is problems.ApiError:
        yield from (problem.slug for _, problem, _ in problems.DOMAIN_PROBLEMS)


def test_every_problem_type_is_documented_and_every_documented_one_exists() -> None:
    documented = {
        uri.removeprefix(problems.PROBLEM_TYPE_BASE)
        for uri in spec()["components"]["schemas"]["ProblemType"]["enum"]
    }
    assert set(_slugs(problems.ApiError)) == documented
    description = spec()["components"]["schemas"]["ProblemType"]["description"]
    assert all(f"`{slug}`" in description for slug in documented)


def _examples() -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """Every example in the spec: (where, value, the schema it illustrates)."""
    document = spec()
    responses = [
        (f"{method} {path} {status}", response)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation.get("responses", {}).items()
    ]
    responses += [(name, r) for name, r in document["components"]["responses"].items()]
    for where, response in responses:
        for media_type, content in response.get("content", {}).items():
            if "example" in content:
                yield f"{where} {media_type}", content["example"], content["schema"]
            for name, example in content.get("examples", {}).items():
                yield f"{where} {media_type} {name}", example["value"], content["schema"]


@pytest.mark.parametrize(
    ("where", "value", "schema"), list(_examples()), ids=[where for where, _, _ in _examples()]
)
def test_every_example_follows_its_schema(where: str, value: Any, schema: dict[str, Any]) -> None:
    validator = OAS31Validator({**spec(), **schema})  # the schema, its $refs resolved in the spec
    assert not list(validator.iter_errors(value)), where


def _same_detections(example: dict[str, Any], live: dict[str, Any]) -> None:
    assert live["model"] == example["model"] and live["image"] == example["image"]
    expected, got = example["detections"], list(live["detections"])
    assert Counter(d["label"] for d in got) == Counter(d["label"] for d in expected)
    for detection in expected:
        same_label = [d for d in got if d["label"] == detection["label"]]
        best = max(same_label, key=lambda d: iou(box_tuple(d["box"]), box_tuple(detection["box"])))
        assert iou(box_tuple(best["box"]), box_tuple(detection["box"])) >= 0.9, detection
        got.remove(best)


def _same_classifications(example: dict[str, Any], live: dict[str, Any]) -> None:
    assert live["model"] == example["model"] and live["image"] == example["image"]
    expected, got = example["classifications"], live["classifications"]
    assert Counter(c["label"] for c in got) == Counter(c["label"] for c in expected)
    assert got[0]["label"] == expected[0]["label"]
    for item in expected:
        match = next(c for c in got if c["label"] == item["label"])
        assert match["class_id"] == item["class_id"]
        assert match["probability"] == pytest.approx(item["probability"], abs=1e-3)


def _same_batch(example: dict[str, Any], live: dict[str, Any]) -> None:
    assert len(live["results"]) == len(example["results"])
    for expected, got in zip(example["results"], live["results"], strict=True):
        if "error" in expected:
            assert got == expected
        else:
            _same_classifications(expected, got)


def _same_problem(example: dict[str, Any], live: dict[str, Any]) -> None:
    assert isinstance(live.pop("request_id"), str)
    assert live == {key: value for key, value in example.items() if key != "request_id"}


def _same(example: Any, live: Any) -> None:
    assert live == example


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Each example in the spec: the request that answers it, and how to compare the answers.
Request = Callable[[FlaskClient], TestResponse]
EXAMPLES: dict[str, tuple[Request, Callable[[Any, Any], None]]] = {
    "post /v1/models/{model}/detect 200 application/json digits": (
        lambda c: c.post("/v1/models/digits/detect", data=upload(DIGITS, "digits.jpg")),
        _same_detections,
    ),
    "post /v1/models/{model}/classify 200 application/json seven": (
        lambda c: c.post("/v1/models/digit-classes/classify", data=upload(SEVEN, "seven.png")),
        _same_classifications,
    ),
    "post /v1/models/{model}/classify 200 application/json batch": (
        lambda c: c.post(
            "/v1/models/digit-classes/classify",
            json={"images": [{"b64": _b64(SEVEN)}, {"b64": _b64(HELLO)}], "top_k": 2},
        ),
        _same_batch,
    ),
    "get /v1/models/{model} 200 application/json": (
        lambda c: c.get("/v1/models/digit-classes"),
        _same,
    ),
    "get /readyz 200 application/json": (lambda c: c.get("/readyz"), _same),
    "BadRequest application/problem+json": (
        lambda c: c.post("/v1/models/digits/detect", data=upload(b"")),
        _same_problem,
    ),
    "Unsupported application/problem+json": (
        lambda c: c.post("/v1/models/digits/detect", data=upload(README)),
        _same_problem,
    ),
    "Invalid application/problem+json": (
        lambda c: c.post("/v1/models/digits/detect?min_score=2", data=upload(SEVEN)),
        _same_problem,
    ),
}


def test_every_example_has_a_request_that_answers_it() -> None:
    assert {where for where, _, _ in _examples()} == set(EXAMPLES)


@pytest.mark.parametrize("where", list(EXAMPLES))
def test_the_examples_are_real_answers(client: FlaskClient, where: str) -> None:
    send, same = EXAMPLES[where]
    example = next(value for place, value, _ in _examples() if place == where)
    response = send(client)
    same(example, response.get_json())


def test_the_image_example_is_a_real_image(client: FlaskClient) -> None:
    b64 = spec()["components"]["schemas"]["ImageData"]["properties"]["b64"]["examples"][0]
    response = client.post("/v1/models/digit-classes/classify", json={"image": {"b64": b64}})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["image"] == {"width": 1, "height": 1}


GOOD = (200, {"Content-Type": "application/json", "X-Request-ID": "a1"}, b'{"models": []}')


@pytest.mark.parametrize(
    "answer",
    [
        (201, GOOD[1], GOOD[2]),
        (200, {**GOOD[1], "Content-Type": "text/plain"}, GOOD[2]),
        (200, {"Content-Type": "application/json"}, GOOD[2]),
        (200, GOOD[1], b'{"models": [{"name": "digits"}]}'),
    ],
    ids=["status", "content-type", "no-request-id", "body"],
)
def test_the_contract_check_refuses_what_the_spec_does_not_say(
    answer: tuple[int, dict[str, str], bytes],
) -> None:
    check("GET", "/v1/models", *GOOD)
    with pytest.raises(ContractError):
        check("GET", "/v1/models", *answer)


def test_the_contract_check_wants_a_problem_from_undocumented_routes() -> None:
    headers = {"Content-Type": "application/json", "X-Request-ID": "a1"}
    with pytest.raises(ContractError):
        check("GET", "/v2/nothing", 404, headers, b'{"error": "not found"}')
