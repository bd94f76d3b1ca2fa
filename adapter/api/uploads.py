"""Reading the images, the options and the deadline out of an HTTP request.

Three input styles reach the same pipeline: a multipart form with one or more
``image`` file parts, a JSON body (``{"image": {"b64": ...}}`` or
``{"images": [...]}``) and a raw ``image/*`` body. Options come from the query
string or, for JSON bodies, from the body's own fields; never from both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Request
from marshmallow import Schema, ValidationError

from adapter import imaging
from adapter.api import problems

IMAGE_FIELD = "image"
IMAGES_FIELD = "images"
# A request may shorten (never lengthen) its model's deadline with this header.
TIMEOUT_HEADER = "X-Request-Timeout-Ms"
MAX_TIMEOUT_MS = 600_000
RAW_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")
_READ_SIZE = 64 * 1024
_MILLISECONDS = re.compile(r"[0-9]{1,7}", re.ASCII)
_ACCEPTED = "multipart/form-data, application/json or " + ", ".join(RAW_IMAGE_TYPES)


@dataclass(frozen=True)
class Upload:
    """The request's images in order, whether it asked for a batch answer, and its options."""

    images: list[bytes]
    batch: bool
    options: dict[str, Any]


def read_timeout_s(request: Request, default_s: float) -> float:
    """The request's time budget: the model's deadline, or less if the header asks (422 if bad)."""
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_s
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not _MILLISECONDS.fullmatch(raw.strip()) or not 1 <= int(raw) <= MAX_TIMEOUT_MS:
        raise problems.ValidationFailed(
            f"The {TIMEOUT_HEADER} header is invalid.",
            errors={TIMEOUT_HEADER: [f"Must be whole milliseconds from 1 to {MAX_TIMEOUT_MS}."]},
        )
    return min(default_s, int(raw) / 1000)


def read_upload(request: Request, options: Schema, body: Schema, max_images: int) -> Upload:
    """Read the images and options of an inference request, whichever style it uses.

    ``options`` validates query-string options, ``body`` a whole JSON body;
    at most ``max_images`` images (422 beyond). Errors are 4xx problems.
    """
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        upload = _read_json(request, body, options)
        field = IMAGES_FIELD if upload.batch else IMAGE_FIELD
    else:
        query = _query(request)
        if mimetype == "multipart/form-data":
            images = _read_form(request)
            upload = Upload(images, len(images) > 1, _load(options, query))
        elif mimetype in RAW_IMAGE_TYPES:
            upload = Upload([_read_body(request)], False, _load(options, query))
        else:
            got = f"'{mimetype}'" if mimetype else "a body without a Content-Type"
            raise problems.UnsupportedMediaType(f"Send the image as {_ACCEPTED}, not {got}.")
        field = IMAGE_FIELD
    if len(upload.images) > max_images:
        message = f"Send at most {max_images} images per request."
        raise problems.ValidationFailed(message, errors={field: [message]})
    if not upload.batch and not upload.images[0]:
        raise imaging.EmptyImage("The uploaded image is empty.")
    return upload


def _query(request: Request) -> dict[str, Any]:
    repeated = [key for key, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise problems.ValidationFailed(
            "An option was given more than once.",
            errors={key: ["Give this option once."] for key in repeated},
        )
    return request.args.to_dict(flat=True)


def _load(schema: Schema, raw: Mapping[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(raw)
    except ValidationError as exc:
        raise problems.ValidationFailed(
            "One or more options are invalid.", errors=_messages(exc)
        ) from None
    return loaded


def _read_form(request: Request) -> list[bytes]:
    if IMAGE_FIELD in request.form:
        detail = "The 'image' field must be a file part (e.g. curl -F image=@photo.jpg)."
        raise problems.BadRequest(detail, errors={IMAGE_FIELD: [detail]})
    extra = sorted(set(request.files) - {IMAGE_FIELD}) + sorted(request.form)
    if extra:
        raise problems.ValidationFailed(
            "The form has unexpected fields; give options in the query string.",
            errors={name: ["Unknown field."] for name in extra},
        )
    parts = request.files.getlist(IMAGE_FIELD)
    if not parts:
        detail = "The form has no 'image' file part."
        raise problems.BadRequest(detail, errors={IMAGE_FIELD: [detail]})
    return [part.read() for part in parts]


def _read_body(request: Request) -> bytes:
    """The whole body, 413 past the upload limit even without a Content-Length.

    Werkzeug's limited stream returns a chunked body cut at the limit from
    ``read()``; reading in pieces makes the read after the limit raise the 413.
    """
    pieces = []
    while piece := request.stream.read(_READ_SIZE):
        pieces.append(piece)
    return b"".join(pieces)


def _read_json(request: Request, schema: Schema, options: Schema) -> Upload:
    try:
        document = json.loads(_read_body(request))
    except (ValueError, RecursionError):  # invalid JSON or UTF-8; absurdly deep nesting
        raise problems.BadRequest("The body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise problems.BadRequest(
            "The body must be a JSON object with 'image' or 'images' (see /openapi.yaml)."
        )
    query = _query(request)
    both = sorted(set(query) & set(document))
    if both:
        raise problems.ValidationFailed(
            "An option was given both in the query string and in the body.",
            errors={key: ["Give this option once, in the query string or the body."]
                    for key in both},
        )  # fmt: skip
    loaded = _load(schema, document)  # JSON types are strict: 2.7 is not an integer
    if query:  # the query string's options, read as text
        given = _load(options, query)
        loaded.update({key: given[key] for key in query})
    if IMAGES_FIELD in loaded:
        images = [item["b64"] for item in loaded.pop(IMAGES_FIELD)]
        return Upload(images, True, loaded)
    return Upload([loaded.pop(IMAGE_FIELD)["b64"]], False, loaded)


def _messages(exc: ValidationError) -> dict[str, Any]:
    messages = exc.messages
    return dict(messages) if isinstance(messages, dict) else {"_schema": messages}
