"""``ShipyardHttpProtocol``: uvicorn's protocol writing each answer's head and body together."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from shipyard.serving import ShipyardHttpProtocol, free_port
from shipyard.serving._http_protocol import PairedWrites

# -- the transport, on a real socket --------------------------------------------------------


class Recording(asyncio.Transport):
    """A real socket transport, and the bytes of each ``write`` made to it (each a send)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()


async def _pair() -> tuple[PairedWrites, Recording, socket.socket]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.settimeout(2)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    assert isinstance(transport, asyncio.Transport)
    recording = Recording(transport)
    return PairedWrites(recording, loop), recording, theirs


async def _close(paired: PairedWrites, peer: socket.socket) -> None:
    paired.close()
    await asyncio.sleep(0.01)  # the transport closes its socket at a later step
    peer.close()


def _read(peer: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += peer.recv(65536)
    return data


def test_two_writes_in_one_step_go_out_as_one() -> None:
    async def main() -> None:
        paired, sent, peer = await _pair()
        paired.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        paired.write(b"ok")
        # one send, at once: the peer has both before the loop runs again
        assert sent.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
        assert _read(peer, 40) == sent.writes[0]
        await _close(paired, peer)

    asyncio.run(main())


def test_a_lone_write_goes_out_at_the_next_loop_step() -> None:
    async def main() -> None:
        paired, sent, peer = await _pair()
        paired.write(b"head")
        assert paired.get_write_buffer_size() == 4 and sent.writes == []  # waits for a partner
        await asyncio.sleep(0)  # the next loop step
        assert sent.writes == [b"head"]
        paired.write(b"a")
        paired.write(b"b")
        paired.write(b"c")  # the third waits for its step
        assert sent.writes == [b"head", b"ab"]
        await asyncio.sleep(0)
        assert sent.writes == [b"head", b"ab", b"c"]
        assert _read(peer, 7) == b"headabc"
        await _close(paired, peer)

    asyncio.run(main())


def test_close_sends_what_waits_first() -> None:
    async def main() -> None:
        paired, sent, peer = await _pair()
        paired.write(b"last words")
        paired.close()
        assert sent.writes == [b"last words"]
        await asyncio.sleep(0.05)
        assert _read(peer, 10) == b"last words"
        assert peer.recv(100) == b""  # then the connection ends
        assert paired.is_closing()
        await _close(paired, peer)

    asyncio.run(main())


# -- through uvicorn ------------------------------------------------------------------------


async def _small(request: Request) -> Response:
    return Response(b'{"ok": true}', media_type="application/json")


async def _large(request: Request) -> Response:
    return Response(bytes(range(256)) * 8192, media_type="application/octet-stream")  # 2 MiB


async def _echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def _slow_stream(request: Request) -> StreamingResponse:
    async def chunks() -> asyncio.AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(0.5)
        yield b"second"

    return StreamingResponse(chunks(), media_type="text/plain")


APP = Starlette(
    routes=[
        Route("/small", _small),
        Route("/large", _large),
        Route("/echo", _echo, methods=["POST"]),
        Route("/stream", _slow_stream),
    ]
)


@contextmanager
def _serve() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=port, log_level="warning", http=ShipyardHttpProtocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with _serve() as port:
        yield port


def test_a_small_answer_arrives_whole(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(20):  # keep-alive: one answer after another on the connection
            sock.sendall(b"GET /small HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"}"):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert answer.endswith(b'\r\n\r\n{"ok": true}')


def test_answers_large_and_small_keep_alive_and_close_are_unchanged(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(3):
            assert client.get("/small").json() == {"ok": True}
            assert client.get("/large").content == bytes(range(256)) * 8192
            body = bytes(range(256)) * 1000
            assert client.post("/echo", content=body).content == body
        closing = client.get("/small", headers={"connection": "close"})
        assert closing.json() == {"ok": True}
        assert closing.headers["connection"] == "close"


def test_a_streamed_answer_is_not_held_back(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        start = time.monotonic()
        with client.stream("GET", "/stream") as answer:
            chunks = answer.iter_raw()
            first = next(chunks)
            seen_first = time.monotonic() - start
            rest = b"".join(chunks)
    assert first.startswith(b"first") and (first + rest).endswith(b"second")
    assert seen_first < 0.4  # the head and first chunk did not wait for the second


def test_serve_names_the_protocol_by_an_import_string_uvicorn_resolves() -> None:
    from shipyard.cli._serve_cmd import _uvicorn_options

    options = _uvicorn_options()
    # a string: --workers' processes import it after their health-check thread is up
    assert isinstance(options["http"], str)
    config = uvicorn.Config(APP, **options)
    config.load()
    assert config.http_protocol_class is ShipyardHttpProtocol
    assert config.access_log is False
