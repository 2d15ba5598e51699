"""A raw HTTP/1.1 POST over a socket, for bodies no well-behaved client would finish sending.

httpx sends the whole body before it reads the answer; a server that answers ``413`` after the
first few hundred kilobytes of a 50 MB body (and closes) makes it fail on the write. This client
checks for the answer before each piece it sends, and stops sending once it is there.
"""

from __future__ import annotations

import http.client
import select
import socket
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import urlsplit

__all__ = ["chunked", "pieces", "raw_post"]


def pieces(total: int, size: int = 65_536, byte: bytes = b"x") -> Iterator[bytes]:
    """``total`` bytes of ``byte``, ``size`` at a time (generated lazily, never held whole)."""
    block = byte * size
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


def chunked(parts: Iterable[bytes]) -> Iterator[bytes]:
    """``parts`` in HTTP chunked transfer encoding, with the closing zero-length chunk."""
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def raw_post(
    url: str, *, headers: Mapping[str, str], parts: Iterable[bytes], timeout: float = 30.0
) -> tuple[int, bytes]:
    """POST ``parts`` to ``url``, stopping early if the server answers first; ``(status, body)``."""
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    with socket.create_connection((host, port), timeout=timeout) as sock:
        head = [f"POST {target.path} HTTP/1.1", f"Host: {host}:{port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for part in parts:
            answered, _, _ = select.select([sock], [], [], 0)
            if answered:
                break
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()
