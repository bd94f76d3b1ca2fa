"""Optional API keys: off by default; when on, a Bearer token or ``X-API-Key`` opens the API."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import ConfigError, Settings, load_settings
from tests.e2e.backends import SEVEN
from tests.helpers import assert_problem, upload

KEY = "k3y-0ne-3a7f9c1d2e4b6a80"
OTHER_KEY = "k3y-tw0-5b8e0f2a4c6d8e1f"
WRONG_KEY = "k3y-0ne-3a7f9c1d2e4b6a81"  # one character off
OPEN_PATHS = ["/healthz", "/readyz", "/openapi.yaml", "/docs", "/docs/", "/docs/index.css"]


@pytest.fixture(scope="module")
def keyed(settings: Settings) -> FlaskClient:
    """The app with two API keys configured, and uploads limited to 64 KiB."""
    app = create_app(
        dataclasses.replace(settings, api_keys=(KEY, OTHER_KEY), max_upload_bytes=64 * 1024)
    )
    app.config["TESTING"] = True
    return app.test_client()


def test_keys_are_off_by_default(client: FlaskClient) -> None:
    assert client.get("/v1/models").status_code == 200
    response = client.post("/v1/models/digit-classes/classify", data=upload(SEVEN))
    assert response.status_code == 200
    assert response.get_json()["classifications"][0]["label"] == "7"


def test_a_request_without_a_key_is_a_401_that_says_how_to_send_one(keyed: FlaskClient) -> None:
    response = keyed.get("/v1/models", headers={"X-Request-ID": "no-key-1"})
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "Authorization: Bearer <key>" in body["detail"]
    assert "X-API-Key: <key>" in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"] == "no-key-1"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {"X-API-Key": WRONG_KEY},
        {"Authorization": f"Bearer {KEY[:-1]}"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": KEY},  # no scheme
        {"Authorization": f"Basic {KEY}"},
    ],
)
def test_a_wrong_key_is_a_401_that_does_not_echo_it(
    keyed: FlaskClient, headers: dict[str, str]
) -> None:
    response = keyed.get("/v1/models", headers=headers)
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert KEY[:12] not in response.get_data(as_text=True)
    assert "X-API-Key: <key>" in body["detail"]


@pytest.mark.parametrize("key", [KEY, OTHER_KEY])
@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_each_configured_key_works_in_either_header(
    keyed: FlaskClient, key: str, header: str
) -> None:
    value = f"Bearer {key}" if header == "Authorization" else key
    models = keyed.get("/v1/models", headers={header: value})
    assert models.status_code == 200
    assert "digits" in {model["name"] for model in models.get_json()["models"]}
    classified = keyed.post(
        "/v1/models/digit-classes/classify", data=upload(SEVEN), headers={header: value}
    )
    assert classified.status_code == 200
    assert classified.get_json()["classifications"][0]["label"] == "7"


def test_the_bearer_scheme_is_case_insensitive_and_basic_falls_back_to_x_api_key(
    keyed: FlaskClient,
) -> None:
    assert keyed.get("/v1/models", headers={"Authorization": f"bearer {KEY}"}).status_code == 200
    proxied = {"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": KEY}
    assert keyed.get("/v1/models", headers=proxied).status_code == 200


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_health_and_docs_answer_without_a_key_as_they_do_with_keys_off(
    keyed: FlaskClient, client: FlaskClient, path: str
) -> None:
    with_keys, without_keys = keyed.get(path), client.get(path)
    assert with_keys.status_code != 401
    assert with_keys.status_code == without_keys.status_code
    assert with_keys.mimetype == without_keys.mimetype
    if path in ("/healthz", "/readyz"):
        assert with_keys.status_code == 200


def test_a_docs_looking_path_does_not_reach_the_api(keyed: FlaskClient) -> None:
    response = keyed.get("/docs/../v1/models", contract=False)  # an odd path on purpose
    assert response.status_code != 200
    assert "models" not in (response.get_json(silent=True) or {})


def test_unknown_routes_need_a_key_too(keyed: FlaskClient) -> None:
    assert_problem(keyed.get("/no/such/endpoint"), 401, "unauthorized")
    assert_problem(keyed.get("/no/such/endpoint", headers={"X-API-Key": KEY}), 404)


def test_the_key_is_checked_before_the_body_is_read(keyed: FlaskClient) -> None:
    big = {"image": (upload(b"\0" * 128 * 1024)["image"][0], "big.png")}
    assert_problem(keyed.post("/v1/models/digits/detect", data=big), 401, "unauthorized")
    big = {"image": (upload(b"\0" * 128 * 1024)["image"][0], "big.png")}
    with_key = keyed.post("/v1/models/digits/detect", data=big, headers={"X-API-Key": KEY})
    assert_problem(with_key, 413, "payload-too-large")


def test_keys_never_reach_the_logs(keyed: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for headers in (
        {"Authorization": f"Bearer {KEY}"},
        {"X-API-Key": OTHER_KEY},
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {"X-API-Key": WRONG_KEY},
        {},
    ):
        keyed.post("/v1/models/digits/detect", data=upload(b"not an image"), headers=headers)
        keyed.get("/no/such/endpoint", headers=headers)
    assert any("rejected" in record.getMessage() for record in caplog.records)
    logged = caplog.text + "".join(repr(record.__dict__) for record in caplog.records)
    for key in (KEY, OTHER_KEY, WRONG_KEY):
        assert key not in logged


# Settings.api_keys from ADAPTER_API_KEYS and ADAPTER_API_KEYS_FILE.


def test_keys_come_from_the_variable_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"# rotated 2024-05\n\n  {OTHER_KEY}  \n# {WRONG_KEY}\n{KEY}\n", "utf-8")
    settings = load_settings({"ADAPTER_API_KEYS": f" {KEY} ,,", "ADAPTER_API_KEYS_FILE": str(path)})
    assert settings.api_keys == (KEY, OTHER_KEY)  # in order, once each, comments skipped
    assert KEY not in repr(settings)
    assert load_settings({}).api_keys == ()
    assert load_settings({"ADAPTER_API_KEYS": " , "}).api_keys == ()


@pytest.mark.parametrize(
    "bad",
    ["short-key", "has a space in this key", "tab\there-0123456789", "clé-non-ascii-0123456789"],
)
def test_an_invalid_key_stops_the_start_without_echoing_it(bad: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"ADAPTER_API_KEYS": f"{KEY},{bad}"})
    assert "API key 2" in str(raised.value)
    assert bad not in str(raised.value) and KEY not in str(raised.value)


def test_a_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"{KEY}\n", "utf-8-sig")  # as Windows editors save "UTF-8"
    assert load_settings({"ADAPTER_API_KEYS_FILE": str(path)}).api_keys == (KEY,)


def test_a_too_short_key_in_the_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"{KEY}\nabc123\n", "utf-8")
    with pytest.raises(ConfigError, match="at least 16") as raised:
        load_settings({"ADAPTER_API_KEYS_FILE": str(path)})
    assert "abc123" not in str(raised.value)


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf-8"])
def test_an_unreadable_key_file_names_the_variable_not_the_keys(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "keys.txt"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf-8":
        path.write_bytes(KEY.encode() + b"\n\xff\xfe" + OTHER_KEY.encode() + b"\n")
    with pytest.raises(ConfigError, match="ADAPTER_API_KEYS_FILE") as raised:
        load_settings({"ADAPTER_API_KEYS_FILE": str(path)})
    assert KEY not in str(raised.value) and OTHER_KEY not in str(raised.value)
