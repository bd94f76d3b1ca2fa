"""The demo page at ``/``, used as a person would, in headless Chromium.

What the page draws is compared with what the API answers the same request
(asked again here, over HTTP): the boxes' places on the screen, the top
class, a problem's title. Every answer the page received is checked against
openapi.yaml when each test ends (the ``network`` fixture).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from axe_core_python.base import AXE_SCRIPT
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from adapter.api.demo import SAMPLES_DIR
from tests.browser.browser import DESKTOP, Network, console_errors, screenshot
from tests.contract import contract_session

DIGITS = SAMPLES_DIR / "digits.jpg"
SEVEN = SAMPLES_DIR / "seven.png"
DETECT = "/v1/models/digits/detect"
CLASSIFY = "/v1/models/digit-classes/classify"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
TOLERANCE_PX = 2
# What the page first asks a detector with: the API's defaults, as its sliders show them.
PAGE_DEFAULTS = {"min_score": "0.50", "max_results": "100"}
WAIT_S = 20


def api(service: str, path: str, image: Path, **params: str) -> tuple[int, dict[str, Any]]:
    """The API's own answer to ``image`` (as the page sends it: a multipart ``image``)."""
    with contract_session() as session:
        files = {"image": (image.name, image.read_bytes())}
        response = session.post(service + path, files=files, params=params, timeout=30)
    return response.status_code, response.json()


def open_page(
    browser: webdriver.Chrome, service: str, path: str = "/", model: str | None = None
) -> None:
    """Open the page once it has listed the models (or asked for a key); pick ``model``."""
    browser.get(service + path)
    WebDriverWait(browser, WAIT_S).until(
        lambda b: (
            b.find_element(By.ID, "model").is_enabled()
            or b.find_element(By.ID, "key-field").is_displayed()
        )
    )
    if model is not None:
        Select(browser.find_element(By.ID, "model")).select_by_value(model)


def give(browser: webdriver.Chrome, image: Path) -> None:
    """Choose ``image`` in the page's file input (what "Choose a file" opens)."""
    browser.find_element(By.ID, "file").send_keys(str(image))


def shown(browser: webdriver.Chrome) -> dict[str, Any]:
    """The raw JSON the page shows, once there is one."""
    text = WebDriverWait(browser, WAIT_S).until(
        lambda b: b.find_element(By.ID, "json").get_attribute("textContent")
    )
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def wait_for_boxes(browser: webdriver.Chrome, count: int) -> list[Any]:
    def drawn(b: webdriver.Chrome) -> list[Any] | None:
        if not b.find_element(By.ID, "figure").is_displayed():
            return None
        boxes = b.find_elements(By.CSS_SELECTOR, "#boxes .box")
        return boxes if len(boxes) == count and not b.execute_script(IN_FLIGHT) else None

    return WebDriverWait(browser, WAIT_S).until(drawn)  # type: ignore[no-any-return]


IN_FLIGHT = "return document.getElementById('status').textContent.startsWith('Asking');"


def assert_boxes_match(browser: webdriver.Chrome, result: dict[str, Any]) -> None:
    """Each drawn box sits where the JSON's box lands on the image as displayed (±2 px)."""
    boxes = wait_for_boxes(browser, len(result["detections"]))
    image = browser.find_element(By.ID, "image").rect
    scale_x = image["width"] / result["image"]["width"]
    scale_y = image["height"] / result["image"]["height"]
    for element, detection in zip(boxes, result["detections"], strict=True):
        box, rect = detection["box"], element.rect
        expected = {
            "x": image["x"] + box["x_min"] * scale_x,
            "y": image["y"] + box["y_min"] * scale_y,
            "width": (box["x_max"] - box["x_min"]) * scale_x,
            "height": (box["y_max"] - box["y_min"]) * scale_y,
        }
        for side, value in expected.items():
            assert abs(rect[side] - value) <= TOLERANCE_PX, (side, rect, expected, detection)
        assert element.text.startswith(detection["label"] + " ")


def test_the_page_loads_without_console_errors_and_lists_the_models(
    browser: webdriver.Chrome, service: str, network: Network
) -> None:
    console_errors(browser)
    open_page(browser, service)
    names = [
        option.get_attribute("value")
        for option in Select(browser.find_element(By.ID, "model")).options
    ]
    with contract_session() as session:
        listed = session.get(service + "/v1/models", timeout=10).json()["models"]
    assert names == [model["name"] for model in listed]
    assert not browser.find_element(By.ID, "key-field").is_displayed()  # keys are off
    assert not browser.find_element(By.ID, "take").is_displayed()  # no camera on a desktop
    assert console_errors(browser) == []
    assert {answer.url.removeprefix(service) for answer in network.collect()} >= {
        "/",
        "/demo/demo.js",
        "/demo/demo.css",
        "/v1/models",
    }


def test_digits_get_one_box_per_digit_where_the_json_puts_it(
    browser: webdriver.Chrome, service: str, network: Network, output_dir: Path
) -> None:
    open_page(browser, service, "/demo", model="digits")
    give(browser, DIGITS)
    status, expected = api(service, DETECT, DIGITS, **PAGE_DEFAULTS)
    assert status == 200
    assert_boxes_match(browser, expected)
    assert shown(browser)["detections"] == expected["detections"]
    assert len(expected["detections"]) == len(
        json.loads(DIGITS.with_suffix(".json").read_text())["digits"]
    )
    steps = browser.find_elements(By.CSS_SELECTOR, "#timing tbody td:first-child")
    assert [step.text for step in steps] == [
        "decode",
        "inference",
        "mapping",
        "round trip (this page)",
    ]
    assert console_errors(browser) == []
    screenshot(browser, output_dir / "demo-desktop.png")


def test_raising_min_score_redraws_with_fewer_boxes(
    browser: webdriver.Chrome, service: str, network: Network
) -> None:
    open_page(browser, service, model="digits")
    give(browser, DIGITS)
    _, at_half = api(service, DETECT, DIGITS, **PAGE_DEFAULTS)
    wait_for_boxes(browser, len(at_half["detections"]))
    slider = browser.find_element(By.ID, "min-score")
    slider.send_keys(*[Keys.ARROW_RIGHT] * 49)  # 0.50 -> 0.99, by the keyboard
    assert browser.find_element(By.ID, "min-score-value").text == "0.99"
    _, stricter = api(service, DETECT, DIGITS, min_score="0.99", max_results="100")
    assert len(stricter["detections"]) < len(at_half["detections"])
    assert_boxes_match(browser, stricter)
    assert "min_score=0.99" in network.collect()[-1].url

    most = browser.find_element(By.ID, "max-results")
    most.send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * 2)  # at most 3
    _, three = api(service, DETECT, DIGITS, min_score="0.99", max_results="3")
    assert len(three["detections"]) == 3
    assert_boxes_match(browser, three)


def test_an_exif_rotated_photo_is_drawn_upright_as_the_api_reports_it(
    browser: webdriver.Chrome, service: str, network: Network, tmp_path: Path
) -> None:
    # Stored on its side, with EXIF orientation 6 ("rotate 90° clockwise to show").
    upright = Image.open(DIGITS)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = tmp_path / "rotated.jpg"
    with io.BytesIO() as buffer:
        upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif)
        rotated.write_bytes(buffer.getvalue())
    open_page(browser, service, model="digits")
    give(browser, rotated)
    _, expected = api(service, DETECT, rotated, **PAGE_DEFAULTS)
    assert (expected["image"]["width"], expected["image"]["height"]) == upright.size
    assert_boxes_match(browser, expected)
    image = browser.find_element(By.ID, "image").rect
    assert image["width"] > image["height"]  # shown upright, as the API read it


def test_a_classifier_shows_its_top_class_first(
    browser: webdriver.Chrome, service: str, network: Network
) -> None:
    open_page(browser, service, model="digit-classes")
    assert browser.find_element(By.ID, "max-results-name").text == "Top classes"
    give(browser, SEVEN)
    _, expected = api(service, CLASSIFY, SEVEN, min_score="0.00", top_k="5")
    rows = WebDriverWait(browser, WAIT_S).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#classes li .label")
    )
    assert expected["classifications"][0]["label"] == "7"
    assert [row.text for row in rows] == [item["label"] for item in expected["classifications"]]
    assert browser.find_elements(By.CSS_SELECTOR, "#boxes .box") == []
    assert console_errors(browser) == []


def test_a_file_that_is_no_image_shows_the_problems_title(
    browser: webdriver.Chrome, service: str, network: Network, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are notes, not a photo\n")
    open_page(browser, service, model="digits")
    give(browser, notes)
    status, problem = api(service, DETECT, notes, **PAGE_DEFAULTS)
    assert 400 <= status < 500
    title = WebDriverWait(browser, WAIT_S).until(
        lambda b: b.find_element(By.ID, "problem-title").text
    )
    assert title == problem["title"]
    assert browser.find_element(By.ID, "problem-detail").text == problem["detail"]
    assert not browser.find_element(By.ID, "figure").is_displayed()
    # The console's only error is the browser's own line for that 4xx answer.
    errors = console_errors(browser)
    assert [entry["source"] for entry in errors] == ["network"], errors
    assert DETECT in errors[0]["message"]


def test_the_sample_button_works_from_the_keyboard(
    browser: webdriver.Chrome, service: str, network: Network
) -> None:
    open_page(browser, service, model="digits")
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(12):
        if browser.switch_to.active_element.get_attribute("id") == "sample":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "sample"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    _, expected = api(service, DETECT, DIGITS, **PAGE_DEFAULTS)
    assert_boxes_match(browser, expected)


def test_the_page_passes_axe_accessibility_checks(
    browser: webdriver.Chrome, service: str, network: Network
) -> None:
    open_page(browser, service, model="digits")
    give(browser, DIGITS)
    shown(browser)
    browser.execute_script(AXE_SCRIPT)
    browser.set_script_timeout(60)
    results = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']})"
        ".then(done, (e) => done({error: String(e)}));"
    )
    assert "error" not in results, results
    violations = [(v["id"], [n["target"] for n in v["nodes"]]) for v in results["violations"]]
    assert violations == []
    assert {rule["id"] for rule in results["passes"]} >= {"color-contrast", "label", "image-alt"}


@pytest.fixture()
def phone(browser: webdriver.Chrome) -> Any:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
    browser.set_window_size(*DESKTOP)


def test_on_a_phone_the_page_fits_offers_the_camera_and_still_places_the_boxes(
    phone: webdriver.Chrome, service: str, network: Network, output_dir: Path
) -> None:
    open_page(phone, service, model="digits")
    assert phone.find_element(By.ID, "take").is_displayed()
    assert phone.find_element(By.ID, "camera").get_attribute("capture") == "environment"
    give(phone, DIGITS)
    _, expected = api(service, DETECT, DIGITS, **PAGE_DEFAULTS)
    assert_boxes_match(phone, expected)
    width = phone.execute_script("return window.innerWidth")
    assert width == PHONE["width"]
    assert phone.execute_script("return document.documentElement.scrollWidth") <= width
    image = phone.find_element(By.ID, "image").rect
    assert image["width"] <= width
    screenshot(phone, output_dir / "demo-phone.png")


# A file made in the page from the bytes given, then dropped on the drop zone
# or pasted, as the browser does with a real drag or a paste.
GIVE_AS = """
const [how, image, name] = arguments;
const bytes = Uint8Array.from(atob(image), (c) => c.charCodeAt(0));
const files = new DataTransfer();
files.items.add(new File([bytes], name, {type: "image/jpeg"}));
const options = {bubbles: true, cancelable: true};
if (how === "drop") {
  const zone = document.getElementById("drop");
  zone.dispatchEvent(new DragEvent("dragover", {...options, dataTransfer: files}));
  zone.dispatchEvent(new DragEvent("drop", {...options, dataTransfer: files}));
} else {
  document.body.dispatchEvent(new ClipboardEvent("paste", {...options, clipboardData: files}));
}
"""


@pytest.mark.parametrize("how", ["drop", "paste"])
def test_an_image_can_be_dropped_or_pasted(
    browser: webdriver.Chrome, service: str, network: Network, how: str
) -> None:
    open_page(browser, service, model="digits")
    image = base64.b64encode(DIGITS.read_bytes()).decode("ascii")
    browser.execute_script(GIVE_AS, how, image, DIGITS.name)
    _, expected = api(service, DETECT, DIGITS, **PAGE_DEFAULTS)
    assert_boxes_match(browser, expected)
    assert "over" not in browser.find_element(By.ID, "drop").get_attribute("class")
