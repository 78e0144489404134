"""The small tree of errors Shipyard raises.

Every error carries an HTTP ``status`` (used by the REST API) and a message written as one
sentence saying what went wrong and how to fix it (printed by the CLI without a traceback)::

    ShipyardError                 500  base class; never raised directly
    ├── InvalidInput              400  a value given by the user is malformed
    │   ├── SchemaViolation       422  a frame does not match a model's input schema
    │   ├── PayloadTooLarge       413  a request body or batch over the server's limits
    │   └── UnsupportedMediaType  415  a Content-Type the endpoint does not read
    ├── Unauthorized              401  no or unknown credentials
    ├── PermissionDenied          403  the acting user's role does not allow this
    │   └── ApprovalRequired      403  four eyes: promotion needs another user's approval
    ├── NotFound                  404  unknown model, version, run, alias, user...
    ├── AlreadyExists             409  a unique name is taken
    ├── InvalidTransition         409  the object's state does not allow this change
    ├── IntegrityError            409  a checksum or hash chain does not verify (tampering)
    ├── TooManyRequests           429  a caller over its rate limit (``retry_after`` seconds)
    ├── ModelUnavailable          503  a known model that cannot be served now (reason given)
    ├── SchemaOutOfDate           503  the database needs ``shipyard db upgrade``
    ├── StoreUnavailable          503  the database or artifact store cannot be reached/written
    └── MissingDependency         501  an optional extra this needs is not installed

The CLI maps ``InvalidInput`` (the input was wrong) to exit code 2 and every other error to
exit code 1 (see ``shipyard.cli.run_cli``).
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    """Base class of every error Shipyard raises on purpose."""

    status: int = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape of the model server: the message and the class.

        ``{"error": message, "code": class name, **details}``: the Open Inference
        Protocol's ``{"error": message}`` (clients such as tritonclient show that field),
        with the class for programs and the details (``errors`` of a ``SchemaViolation``).

        >>> NotFound("Model 'x' is not served here.").to_dict()
        {'error': "Model 'x' is not served here.", 'code': 'NotFound'}
        """
        extra = {k: v for k, v in self.details.items() if k not in ("error", "code")}
        return {"error": self.message, "code": type(self).__name__, **extra}


class InvalidInput(ShipyardError):
    """A value given by the user is malformed."""

    status = 400


class SchemaViolation(InvalidInput):
    """A frame does not match a model's input schema; ``details['errors']`` lists each field."""

    status = 422


class PayloadTooLarge(InvalidInput):
    """The request body, or its number of rows, is over the server's limit."""

    status = 413


class UnsupportedMediaType(InvalidInput):
    """The request's Content-Type is not one the endpoint reads."""

    status = 415


class Unauthorized(ShipyardError):
    """No or unknown credentials."""

    status = 401


class PermissionDenied(ShipyardError):
    """The acting user's role does not allow this action."""

    status = 403


class ApprovalRequired(PermissionDenied):
    """Promotion to production needs an approval by an approver who is not the author."""


class NotFound(ShipyardError):
    """Unknown model, version, run, alias or user."""

    status = 404


class AlreadyExists(ShipyardError):
    """A unique name is already taken."""

    status = 409


class InvalidTransition(ShipyardError):
    """The object's current state does not allow this change."""

    status = 409


class IntegrityError(ShipyardError):
    """A checksum or the audit hash chain does not verify: the data was changed out of band."""

    status = 409


class TooManyRequests(ShipyardError):
    """A caller over its request rate; ``details["retry_after"]`` is the seconds to wait
    (the HTTP answer's ``Retry-After`` header)."""

    status = 429


class ModelUnavailable(ShipyardError):
    """A served model that cannot answer now; the message says why and how to fix it."""

    status = 503


class SchemaOutOfDate(ShipyardError):
    """The database schema is older than this version of Shipyard."""

    status = 503


class StoreUnavailable(ShipyardError):
    """The metadata database or the artifact store cannot be reached or written."""

    status = 503


class MissingDependency(ShipyardError):
    """An optional extra this needs is not installed; the message names the pip command."""

    status = 501
