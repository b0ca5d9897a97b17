"""What a connector's webhooks share: a JSON refusal that names the problem, and a checked JSON body."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Response

from omniroute.errors import from_validation

__all__ = ["decode_json", "refuse"]

_T = TypeVar("_T")


def refuse(status: int, detail: str) -> Response[dict[str, Any]]:
    """An error answer in the server's own shape (``{"status_code", "detail"}``)."""
    return Response({"status_code": status, "detail": detail}, status_code=status)


def decode_json(body: bytes, type_: type[_T]) -> _T | Response[dict[str, Any]]:
    """The body as ``type_``, or the 400 answer naming the field (or saying it is not JSON)."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as e:
        return refuse(400, str(from_validation(e)))
    except msgspec.DecodeError as e:
        return refuse(400, f"body: not JSON: {e}")
