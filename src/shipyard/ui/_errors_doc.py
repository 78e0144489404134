"""The error responses the ``/api/`` routes document in the OpenAPI schema: one shape,
``{"error": "what went wrong and how to fix it"}``, for every status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ApiError(BaseModel):
    """Every error of the JSON API."""

    error: str


_MEANINGS = {
    400: "Invalid input (a query parameter out of range, an unknown filter value).",
    401: "Not logged in: send 'Authorization: Bearer <token>' or a session cookie.",
    403: "The caller's role may not do this, or the CSRF token is missing.",
    404: "No such model, version, model group, run, alert or prediction.",
    409: "The state does not allow this, or changed since the page was read; nothing was applied.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its meaning and the error shape.

    >>> sorted(error_responses(401, 404))
    [401, 404]
    """
    return {s: {"model": ApiError, "description": _MEANINGS[s]} for s in statuses}
