"""HTTP-only errors of the serving layer.

They extend the tree in ``shipyard.errors`` (and keep its one JSON shape); they live here
because only the server raises them::

    InvalidInput            400
    ├── PayloadTooLarge     413  body or batch over the configured limits
    └── UnsupportedMediaType 415  a Content-Type the endpoint does not read
    ModelUnavailable        503  the model is known but cannot be served (e.g. its archive
                                 failed verification at load); the reason is in the message
"""

from __future__ import annotations

from shipyard.errors import InvalidInput, ShipyardError


class PayloadTooLarge(InvalidInput):
    """The request body, or its number of rows, is over the server's limit."""

    status = 413


class UnsupportedMediaType(InvalidInput):
    """The request's Content-Type is not one the endpoint reads."""

    status = 415


class ModelUnavailable(ShipyardError):
    """A served model that cannot answer now; the message says why and how to fix it."""

    status = 503
