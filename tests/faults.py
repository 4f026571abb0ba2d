"""A TCP proxy that can cut a real connection: the outage tests put it between the plugin and PostgreSQL.

``refuse()`` closes every connection and the listening socket (a server that is
down); ``blackhole()`` keeps every connection open and accepting but forwards
nothing (a network that drops packets: the harder case, where only timeouts help); ``restore()`` goes
back to forwarding.  It runs on its own thread and event loop, so it works
beside synchronous and asynchronous tests alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class TcpProxy:
    """127.0.0.1:<port> -> target, with switchable faults."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = "up"
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close_all(stop_listening=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def refuse(self) -> None:
        """Drop every connection and stop listening: connection refused."""
        self.mode = "down"
        self._call(self._close_all(stop_listening=True))

    def blackhole(self) -> None:
        """Go silent: open connections stall, new ones are accepted but never answered."""
        self.mode = "blackhole"

    def restore(self) -> None:
        """Forward again."""
        self.mode = "up"
        if self._server is None:
            self._call(self._listen())

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port or 0, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_all(self, stop_listening: bool) -> None:
        if stop_listening and self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.mode != "up":
            await reader.read()  # swallow everything, answer nothing
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.mode != "up":
                    await reader.read()  # blackholed mid-stream: swallow
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
