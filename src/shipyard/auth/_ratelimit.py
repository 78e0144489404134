"""Per-token request rate limits: in memory, or shared by every replica through Redis.

A limit reads ``"100/s"`` (also ``/min``, ``/h``, or a multiple: ``"500/10s"``): at most that
many requests in any such period, at a steady pace of one per ``period / limit`` once a burst
of ``limit`` is spent. The algorithm is GCRA (the generic cell rate algorithm, a leaky bucket
that stores one number per key: the theoretical arrival time of the next request), which
gives an exact ``Retry-After`` and needs no background clean-up.

``MemoryRateLimiter`` counts in the process (each replica separately); ``RedisRateLimiter``
counts in Redis with one atomic Lua script on Redis's own clock, so every replica and worker
shares one budget per token and their clocks do not matter. While Redis cannot be reached,
the Redis limiter falls back to counting in memory (each replica on its own) and logs it once
a minute: limits keep holding per replica, and requests are never refused because Redis is
down.

>>> rate = Rate.parse("2/s")
>>> limiter = MemoryRateLimiter(rate)
>>> limiter.wait("token:1", now=0.0), limiter.wait("token:1", now=0.0)
(None, None)
>>> limiter.wait("token:1", now=0.0)
0.5
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from shipyard.errors import InvalidInput, MissingDependency, TooManyRequests

log = logging.getLogger("shipyard.auth")

_RATE = re.compile(r"(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour)\Z")
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
#: How long the Redis limiter counts in memory after Redis failed before it asks Redis again.
_REDIS_RETRY_SECONDS = 1.0
#: Redis must answer within this or the request is counted in memory: a stalled Redis must
#: not hold requests.
_REDIS_TIMEOUT_SECONDS = 0.25

# KEYS[1]: the key; ARGV[1]: the emission interval (period / limit), ARGV[2]: the period, both
# in microseconds. Returns 0 (allowed, counted) or the microseconds to wait.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[1])
local wait = new_tat - tonumber(ARGV[2]) - now
if wait > 0 then return wait end
local ttl = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl)
return 0
"""


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests per ``period`` seconds."""

    limit: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/s"``, ``"6000/min"``, ``"500/10s"``, ``"1000/h"``.

        >>> Rate.parse("500/10s")
        Rate(limit=500, period=10.0)
        """
        match = _RATE.match(text.strip().lower()) if isinstance(text, str) else None
        if match is None or int(match.group(1)) < 1 or int(match.group(2) or 1) < 1:
            raise InvalidInput(
                f"A rate limit reads like '100/s', '6000/min', '500/10s' or '1000/h'. Got "
                f"{str(text)[:40]!r} instead."
            )
        count = int(match.group(2) or 1)
        return cls(int(match.group(1)), float(count * _UNITS[match.group(3)]))

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady pace."""
        return self.period / self.limit

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


class RateLimiter(Protocol):
    """Counts a request of ``key`` and says how long it must wait (``None``: go ahead)."""

    rate: Rate

    async def check(self, key: str) -> float | None: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """GCRA in this process's memory, bounded to ``max_keys`` keys (least recent forgotten)."""

    def __init__(self, rate: Rate, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: str, *, now: float | None = None) -> float | None:
        """Count a request of ``key`` at ``now``; the seconds it must wait, or ``None``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + self.rate.interval
            wait = new_tat - self.rate.period - now
            if wait > 1e-9:
                return wait
            self._tat[key] = new_tat
            self._tat.move_to_end(key)
            if len(self._tat) > self.max_keys:
                self._tat.popitem(last=False)
            return None

    async def check(self, key: str) -> float | None:
        return self.wait(key)

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """GCRA in Redis at ``url`` (``redis://host:6379/0``), shared by every replica.

    Keys are ``<prefix><key>``; each expires once its budget is whole again.
    """

    def __init__(self, rate: Rate, url: str, *, prefix: str = "shipyard:rate:") -> None:
        self.rate = rate
        self.url = url
        self.prefix = prefix
        self.fallback = MemoryRateLimiter(rate)
        self._client: Any = None
        self._script: Any = None
        self._down_until = 0.0
        self._warned_at = -1e9

    def _connect(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis  # checked by rate_limiter

            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
            )
            self._script = self._client.register_script(_GCRA)
        return self._script

    async def check(self, key: str) -> float | None:
        now = time.monotonic()
        if now < self._down_until:
            return self.fallback.wait(key, now=now)
        script = self._connect()
        interval = max(1, round(self.rate.interval * 1e6))
        try:
            waited = await script(
                keys=[self.prefix + key], args=[interval, round(self.rate.period * 1e6)]
            )
        except Exception as exc:  # any connection, timeout or server error: count locally
            self._down_until = now + _REDIS_RETRY_SECONDS
            if now - self._warned_at > 60:
                self._warned_at = now
                log.warning(
                    "Redis at %s cannot count request rates (%s); each replica counts its "
                    "own until it answers again.",
                    _redacted(self.url),
                    type(exc).__name__,
                )
            return self.fallback.wait(key, now=now)
        return int(waited) / 1e6 if int(waited) > 0 else None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def rate_limiter(rate: str | None, redis_url: str | None) -> RateLimiter | None:
    """The limiter for a ``rate`` setting (``None``: no limit), shared through Redis when
    ``redis_url`` is set."""
    if not rate:
        return None
    parsed = Rate.parse(rate)
    if redis_url:
        try:
            import redis.asyncio  # noqa: F401 - refuse at start-up, not on the first request
        except ImportError as exc:
            raise MissingDependency(
                "A rate limit shared through Redis needs the redis client: "
                "pip install 'shipyard[redis]'."
            ) from exc
        return RedisRateLimiter(parsed, redis_url)
    return MemoryRateLimiter(parsed)


def too_many(wait: float, rate: Rate) -> TooManyRequests:
    """The 429 for a caller who must wait ``wait`` seconds."""
    seconds = max(1, int(wait + 0.999))
    return TooManyRequests(
        f"Too many requests for this API token (its limit is {rate}); retry in {seconds} "
        f"second{'s' if seconds > 1 else ''} (HTTP: the Retry-After header; gRPC: the "
        "retry-after metadata).",
        retry_after=seconds,
    )


def _redacted(url: str) -> str:
    """``url`` without a password (``redis://:secret@host`` -> ``redis://***@host``)."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
