"""uvicorn's HTTP protocol, with each answer's head and body going out in one write.

uvicorn writes a response's status line and headers when the app sends
``http.response.start``, and its body when the app sends ``http.response.body``: two
``send()`` calls on the socket, two TCP segments, for every answer. For a one-row prediction
that second system call (and, on the same machine, the receiving side's work on the second
segment) cost about 5-10% of the server's CPU per request.

``ShipyardHttpProtocol`` is uvicorn's httptools protocol with its transport wrapped in
``PairedWrites``: a write waits for the next one and both go out joined, so a head goes out
with its body, in the same event-loop step (a Starlette ``Response`` sends both without
pausing). A write that is not followed by another in its step goes out at the start of the
next step (``loop.call_soon``): a streamed answer's head or chunk is held for one loop step at
most, never for the app's own awaits. ``close()`` sends what waits first. Bytes and order on
the wire are unchanged.

``shipyard serve`` passes it as uvicorn's ``http`` (httptools is one of Shipyard's
dependencies, so uvicorn's ``"auto"`` would pick the same protocol without the pairing).

>>> uvicorn.run(app, http=ShipyardHttpProtocol)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["PairedWrites", "ShipyardHttpProtocol"]


class PairedWrites(asyncio.Transport):
    """A transport whose writes go out in pairs (or alone at the next loop step)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._waiting: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        waiting = self._waiting
        if waiting is None:
            self._waiting = bytes(data)
            self._loop.call_soon(self._flush)
            return
        self._waiting = None
        self._transport.write(waiting + data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _flush(self) -> None:
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            if not self._transport.is_closing():
                self._transport.write(waiting)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._waiting = None
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        waiting = self._waiting
        return self._transport.get_write_buffer_size() + (len(waiting) if waiting else 0)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class ShipyardHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing each answer's head and body together."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(PairedWrites(transport, asyncio.get_running_loop()))
