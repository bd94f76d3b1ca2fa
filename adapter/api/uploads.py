"""Reading the image, the options and the deadline out of an HTTP request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Request
from marshmallow import Schema, ValidationError

from adapter import errors

IMAGE_FIELD = "image"
# A request may shorten (never lengthen) its model's deadline with this header.
TIMEOUT_HEADER = "X-Request-Timeout-Ms"
MAX_TIMEOUT_MS = 600_000


def read_timeout_s(request: Request, default_s: float) -> float:
    """The request's time budget: the model's deadline, or less if the header asks (422 if bad)."""
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_s
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_TIMEOUT_MS:
        raise errors.ValidationFailed(
            f"The {TIMEOUT_HEADER} header is invalid.",
            errors={TIMEOUT_HEADER: [f"Must be whole milliseconds from 1 to {MAX_TIMEOUT_MS}."]},
        )
    return min(default_s, int(raw) / 1000)


def read_options(request: Request, schema: Schema) -> dict[str, Any]:
    """Validate the query-string options; 422 naming each bad field."""
    raw: Mapping[str, Any] = request.args.to_dict(flat=True)
    repeated = [key for key, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise errors.ValidationFailed(
            "An option was given more than once.",
            errors={key: ["Give this option once."] for key in repeated},
        )
    try:
        loaded: dict[str, Any] = schema.load(raw)
    except ValidationError as exc:
        raise errors.ValidationFailed(
            "One or more options are invalid.", errors=_messages(exc)
        ) from None
    return loaded


def read_image(request: Request) -> bytes:
    """Return the bytes of the multipart ``image`` part; 4xx when absent or empty."""
    if request.mimetype != "multipart/form-data":
        raise errors.UnsupportedImage(
            "Send the image as multipart/form-data with an 'image' file part."
        )
    extra = sorted(set(request.files) - {IMAGE_FIELD}) + sorted(request.form)
    if extra:
        raise errors.ValidationFailed(
            "The form has unexpected fields.",
            errors={name: ["Unknown field."] for name in extra},
        )
    parts = request.files.getlist(IMAGE_FIELD)
    if len(parts) != 1:
        detail = "The form has no 'image' file part." if not parts else "Send one 'image' part."
        raise errors.BadRequest(detail, errors={IMAGE_FIELD: [detail]})
    data: bytes = parts[0].read()
    if not data:
        raise errors.InvalidImage("The uploaded image is empty.")
    return data


def _messages(exc: ValidationError) -> dict[str, Any]:
    messages = exc.messages
    return dict(messages) if isinstance(messages, dict) else {"_schema": messages}
