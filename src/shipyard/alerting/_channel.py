"""The contract every alert channel follows, and the retry loop they share.

A channel's ``__init__`` is keyword-only and only stores its arguments; ``validate()`` checks
them and raises ``InvalidInput``; ``from_config(mapping)`` builds and validates one from a
``shipyard.toml`` table. ``send(alert)`` never raises for a delivery failure: it returns a
``Delivery`` saying whether it worked, after how many attempts, and why not, so that the
scheduler that calls it cannot be brought down by a mail server.
"""

from __future__ import annotations

import abc
import inspect
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from shipyard.alerting._alert import Alert
from shipyard.errors import InvalidInput


@dataclass(frozen=True)
class Delivery:
    """The outcome of ``Channel.send``: ``error`` is ``None`` when ``ok``; ``timed_out`` when
    the last attempt failed because the server did not answer in time (a stalled server)."""

    ok: bool
    attempts: int
    error: str | None = None
    timed_out: bool = field(default=False, repr=False)


class RetryableError(Exception):
    """A failure worth another attempt (timeout, refused connection, 5xx, SMTP 4xx)."""


class TimedOut(RetryableError):
    """The server did not answer within the timeout: it may have stalled (``raise_all`` then
    skips the channel for the rest of its batch)."""


class PermanentError(Exception):
    """A failure another attempt would repeat (HTTP 4xx, SMTP 5xx, TLS not offered)."""


def deliver_with_retries(
    attempt: Callable[[], None],
    *,
    attempts: int,
    backoff: float,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Call ``attempt`` until it returns, raises ``PermanentError`` or ``attempts`` run out.

    Waits ``backoff * 2**i`` seconds after the i-th failed attempt. With a ``deadline`` (a
    ``clock()`` value), no wait or new attempt goes past it: the channel also cuts each
    attempt's timeout to ``time_left(deadline, timeout)``. Any other exception is treated as
    permanent and reported, never raised: a bug in a channel must not crash the scheduler
    either.

    >>> deliver_with_retries(lambda: None, attempts=3, backoff=0.0)
    Delivery(ok=True, attempts=1, error=None)
    """
    error = "no attempt was made"
    timed_out = False
    for number in range(1, attempts + 1):
        try:
            attempt()
        except RetryableError as exc:
            error, timed_out = str(exc), isinstance(exc, TimedOut)
            if number < attempts:
                pause = backoff * 2 ** (number - 1)
                if deadline is not None and clock() + pause >= deadline:
                    return Delivery(
                        ok=False,
                        attempts=number,
                        error=f"{error} (gave up after {number} attempt(s): out of time)",
                        timed_out=timed_out,
                    )
                sleep(pause)
            continue
        except PermanentError as exc:
            return Delivery(ok=False, attempts=number, error=str(exc))
        except Exception as exc:  # unexpected: report it rather than crash the caller
            return Delivery(ok=False, attempts=number, error=f"{type(exc).__name__}: {exc}")
        return Delivery(ok=True, attempts=number)
    return Delivery(
        ok=False,
        attempts=attempts,
        error=f"{error} (gave up after {attempts} attempts)",
        timed_out=timed_out,
    )


class Channel(abc.ABC):
    """Where alerts go. Subclasses set ``name`` and implement ``validate`` and ``send``."""

    name: ClassVar[str]
    config_aliases: ClassVar[Mapping[str, str]] = {}
    """Keys accepted in ``shipyard.toml`` for parameters whose name is a Python keyword."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build a channel from a configuration table and validate it.

        Any option may be given as ``<option>_env = "VARIABLE"`` instead, read from the
        environment, so secrets (an SMTP password, a Slack webhook URL) stay out of the file.
        Raises ``InvalidInput`` for an unknown or missing option or an invalid value.
        """
        params = inspect.signature(cls.__init__).parameters
        accepted = [name for name in params if name != "self"]
        kwargs: dict[str, Any] = {}
        for key, value in config.items():
            if key.endswith("_env") and key[:-4] and key not in accepted:
                key, value = key[:-4], _from_environment(cls.name, key, value)
            name = cls.config_aliases.get(key, key)
            if name not in accepted:
                raise InvalidInput(
                    f"Unknown option {key!r} for the {cls.name} channel. "
                    f"Use one of: {', '.join(sorted(accepted))}."
                )
            kwargs[name] = value
        missing = [
            name
            for name in accepted
            if params[name].default is inspect.Parameter.empty and name not in kwargs
        ]
        if missing:
            raise InvalidInput(
                f"The {cls.name} channel needs the option(s) {', '.join(missing)}. Add them."
            )
        channel = cls(**kwargs)
        channel.validate()
        return channel

    @abc.abstractmethod
    def validate(self) -> None:
        """Raise ``InvalidInput`` saying which parameter is wrong and what it should be."""

    @abc.abstractmethod
    def send(self, alert: Alert, *, deadline: float | None = None) -> Delivery:
        """Deliver ``alert``; report failures in the returned ``Delivery``, never raise them.

        ``deadline`` is a ``time.monotonic()`` value the delivery must not run past (retries
        stop and each attempt's timeout is cut); ``None`` lets every attempt run.
        """


def check_retry_params(channel: str, *, timeout: float, attempts: int, backoff: float) -> None:
    """Validate the parameters every channel shares."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InvalidInput(
            f"The 'timeout' parameter of the {channel} channel must be a number of seconds "
            f"> 0. Got {timeout!r} instead."
        )
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise InvalidInput(
            f"The 'attempts' parameter of the {channel} channel must be an int in [1, 20]. "
            f"Got {attempts!r} instead."
        )
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not backoff >= 0:
        raise InvalidInput(
            f"The 'backoff' parameter of the {channel} channel must be a number of seconds "
            f">= 0. Got {backoff!r} instead."
        )


def time_left(deadline: float | None, timeout: float, *, floor: float = 0.05) -> float:
    """The timeout for the next attempt: ``timeout``, cut to what is left before ``deadline``.

    >>> time_left(None, 10.0)
    10.0
    """
    if deadline is None:
        return timeout
    return max(floor, min(timeout, deadline - time.monotonic()))


def _from_environment(channel: str, option: str, variable: Any) -> str:
    if not isinstance(variable, str) or not variable:
        raise InvalidInput(
            f"The {option!r} option of the {channel} channel must name an environment "
            f"variable. Got {variable!r} instead."
        )
    value = os.environ.get(variable)
    if value is None:
        raise InvalidInput(
            f"The {channel} channel reads {option[:-4]!r} from the environment variable "
            f"{variable!r} ({option}), which is not set. Set it, or write the value itself."
        )
    return value
