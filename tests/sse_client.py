"""A raw HTTP/1.1 client for server-sent event streams, as a browser's EventSource reads them."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Block:
    """One block of an event stream: an event, a ``retry:`` line, or a comment."""

    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        """The event's data parsed as JSON."""
        assert self.data is not None
        return json.loads(self.data)


class EventStream:
    """One ``GET`` of an event stream over a raw HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self._text = ""
        self.ended = False

    @classmethod
    async def open(cls, base_url: str, path: str, headers: dict[str, str] | None = None) -> EventStream:
        """Connect, send the request, read the status line and headers."""
        url = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        stream = cls(reader, writer)
        lines = [f"GET {path} HTTP/1.1", f"Host: {url.netloc}", "Accept: text/event-stream", "Cache-Control: no-cache"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        stream.status = int(status_line.split()[1])
        for line in filter(None, header_lines):
            name, _, value = line.partition(":")
            stream.headers[name.strip().lower()] = value.strip()
        return stream

    async def _read_chunk(self) -> bool:
        size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            self.ended = True
            return False
        self._text += (await self.reader.readexactly(size + 2))[:-2].decode("utf-8")
        return True

    async def next(self, timeout: float = 10.0) -> Block:
        """The next block; ``EOFError`` once the server has ended the stream."""
        async with asyncio.timeout(timeout):
            while "\n\n" not in self._text:
                if self.ended or not await self._read_chunk():
                    raise EOFError("the server ended the stream")
        raw, self._text = self._text.split("\n\n", 1)
        block = Block()
        for line in raw.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                block.comments.append(value)
            elif name == "event":
                block.event = value
            elif name == "data":
                block.data = value if block.data is None else block.data + "\n" + value
            elif name == "retry":
                block.retry = int(value)
        return block

    async def next_event(self, name: str, timeout: float = 10.0) -> Block:
        """The next event called ``name``, skipping comments and other events."""
        async with asyncio.timeout(timeout):
            while True:
                block = await self.next(timeout)
                if block.event == name:
                    return block

    async def ends(self, timeout: float = 10.0) -> bool:
        """True once the server ends the stream within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.next(timeout)
        except EOFError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        """Hang up, as a browser does when the page goes away."""
        self.writer.close()
