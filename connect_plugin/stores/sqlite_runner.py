"""The SQLite side of the SQL store: ``sqlite3``, writes on a thread of their own, reads on the event loop.

Writes go through one thread with one connection (SQLite has one writer at a
time anyway: queuing them here beats fighting over the file lock, and the
``fsync`` of a commit never holds the event loop).  A write is one hop to that
thread, whatever the number of statements.  Reads are lookups by key, which
WAL mode lets run while a write is under way: they run on the event loop's
own thread, with a connection of their own (``_InlineReader``), because the
hop to a thread and back costs more than the read; only when the file is
locked does a read go to a reading thread that waits for the lock.

``synchronous=FULL``: a write is answered only once it is on disk.  The
``fsync`` that costs is shared: the writer takes every write waiting when it
starts a transaction, runs each inside a savepoint of its own (a failed one
is undone alone), commits them together and only then answers them (group
commit).  One write alone is one transaction, as before; under load, one
``fsync`` serves many.

Checkpoints (copying the write-ahead log back into the database file, with
their own ``fsync``) are not left to whichever write happens to fill the log,
where they would hold up every write queued behind it: the writer's
connection has ``wal_autocheckpoint`` off, and a third thread with its own
connection runs a ``PASSIVE`` checkpoint every ``CHECKPOINT_INTERVAL``
seconds, which never waits for the writer nor makes it wait.  That thread
alone never quite catches up with a writer that never pauses, and the log
only starts over from its beginning once every frame is back: so when the log
holds ``RESTART_FRAMES`` or more, the checkpointer makes a second pass at
once, and if that was quick (the writes are not outrunning it), the writer
checkpoints the few frames left after its next commit (no write can add any
meanwhile), and the write after that starts the log over, cutting the file to
``JOURNAL_SIZE_LIMIT``.  A cleanup's bounded deletes are paced by the
checkpointer: each batch writes thousands of pages (three of the session
table's indexes are on random keys), and a batch waits until the last one is
checkpointed.  So the log stays short during a cleanup of a million sessions
too (without that pacing it grew by gigabytes, and starting it over at the
end held every write for seconds), and each checkpoint's ``fsync`` has one
batch to write, not a second's worth, which a commit queued behind it would
wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from ..errors import StoreUnavailable
from .compiled import Compiled
from .runner import REVISION_SQL, Duplicate, Missing, Row, Step
from .urls import describe_failure

log = logging.getLogger(__name__)
T = TypeVar("T")
BUSY_TIMEOUT = 5.0  # seconds a statement waits for another process's lock on the file
CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoints of the write-ahead log
#: Frames (pages) in the log beyond which the writer finishes a checkpoint itself, so that the log starts over...
RESTART_FRAMES = 1000
#: ... if the checkpointer's last pass took at most this long and left at most this many to copy.
CATCH_UP_SECONDS = 0.010
CATCH_UP_FRAMES = 256
#: Bytes the log file is cut back to when it starts over (after a burst, such as a large cleanup, made it long).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def _close(conn: sqlite3.Connection | None) -> None:
    """Close a lane's connection, if it has one."""
    if conn is not None:
        conn.close()


def _unavailable(error: BaseException) -> StoreUnavailable:
    log.warning("session store error: %s", type(error).__name__)
    return StoreUnavailable("the session store does not answer", reason=describe_failure(error))


class _Lane:
    """One thread and its own connection: the statements of a lane run one at a time, in order."""

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"connect-plugin-sqlite-{name}")
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` with this lane's connection, on its thread."""
        if self._closed:
            raise StoreUnavailable("the session store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, work)
        except (Duplicate, Missing):
            raise
        except (sqlite3.Error, OSError) as error:
            raise _unavailable(error) from None

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._connect()
        try:
            return work(self._conn)
        except sqlite3.DatabaseError as error:
            if not isinstance(error, sqlite3.IntegrityError):
                self._drop()  # the file may have gone or changed: open it again next time
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        _close(conn)

    async def close(self) -> None:
        """Close the connection on its thread, then stop the thread (once; again does nothing)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._pool, self._drop)
        self._pool.shutdown(wait=True)


class _InlineReader:
    """Point reads on the event loop's own thread, with a connection of their own.

    A lookup by key in WAL mode takes tens of microseconds and never waits for
    the writer: less than the hand-off to a thread and back, which also waits
    for that thread to get a core on a busy machine.  The connection does not
    wait for locks either (``busy_timeout`` 0): in the rare case that the file
    is locked (another process recovering its log, say), the read goes to
    ``fallback``, the reading thread, which waits as long as ``BUSY_TIMEOUT``.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], fallback: _Lane) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self.fallback = fallback

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` now, on this thread; on the reading thread if the file is locked."""
        if self._closed:
            raise StoreUnavailable("the session store is closed")
        try:
            if self._conn is None:
                self._conn = self._connect()
                self._conn.execute("PRAGMA busy_timeout=0")
            return work(self._conn)
        except (sqlite3.Error, OSError) as error:
            if getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return await self.fallback.run(work)
            self._drop()  # the file may have gone or changed: open it again next time
            raise _unavailable(error) from None

    def close(self) -> None:
        """Close the connection for good."""
        self._closed = True
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        _close(conn)


#: Most writes committed together (a bound on how long the first of them waits for the others).
MAX_GROUP = 64


class _Job:
    """One write waiting for the writer: the work, and where its answer goes."""

    __slots__ = ("future", "loop", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        """Hand the outcome to the event loop (from the writer's thread)."""
        self.loop.call_soon_threadsafe(self._settle, result, error)

    def _settle(self, result: Any, error: BaseException | None) -> None:
        if self.future.done():  # the caller gave up waiting
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class _WriteLane:
    """The writing thread: each write in a savepoint of its own, the writes waiting committed together."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Transactions committed so far (each may carry many writes).
        self.commits = 0
        #: Set by the checkpointer when the log has grown: the writer finishes the checkpoint itself.
        self.catch_up = False
        #: Checkpoints the writer finished (each lets the next write start the log over).
        self.catch_ups = 0

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` (which must not begin or end transactions) and answer once it is committed."""
        if self._closed:
            raise StoreUnavailable("the session store is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="connect-plugin-sqlite-write", daemon=True)
            self._thread.start()
        job = _Job(work, asyncio.get_running_loop())
        self._jobs.put(job)
        return cast(T, await job.future)

    async def close(self) -> None:
        """Finish the writes queued, close the connection and stop the thread (once)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _serve(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                break
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)  # stop after this group
                    break
                group.append(more)
            self._commit(group)
            if self.catch_up:
                self._catch_up()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _commit(self, group: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            for job in group:
                conn.execute("SAVEPOINT write")
                try:
                    result = job.work(conn)
                except (Duplicate, Missing) as refused:  # the contract's answers: undo this write alone
                    conn.execute("ROLLBACK TO write")
                    outcomes.append((job, None, refused))
                else:
                    outcomes.append((job, result, None))
                conn.execute("RELEASE write")
            conn.execute("COMMIT")
            self.commits += 1
        except (sqlite3.Error, OSError) as error:  # nothing of the group is kept: every write fails
            self._abandon()
            failure = _unavailable(error)
            for job in group:
                job.answer(error=failure)
            return
        for job, result, outcome_error in outcomes:
            job.answer(result, outcome_error)

    def _catch_up(self) -> None:
        """Checkpoint the frames the checkpointer left (no write can add any meanwhile: this is the writer).

        Once every frame is back in the database file, the next write starts
        the log over from its beginning (and cuts the file to
        ``journal_size_limit``); without this, a log written to without pause
        is never quite caught up by the checkpointer, and grows for good.
        """
        if self._conn is None:
            return
        try:
            frames, done, _took = _checkpoint(self._conn)
        except sqlite3.Error as error:
            log.warning("checkpoint by the writer failed: %s", type(error).__name__)
            return
        if frames == done:  # all back (a reader still on old frames leaves some: the next group tries again)
            self.catch_up = False
            self.catch_ups += 1

    def _abandon(self) -> None:
        if self._conn is None:
            return
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._conn.close()  # the file may have gone or changed: open it again next time
            self._conn = None


#: How every connection to the file is set up, here and in the engines of migrations and tools
#: (``engine.make_engine``).  WAL: readers and the writer never block each other.  synchronous=FULL:
#: a commit that answered is on disk, even if the machine loses power.
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}",
           f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")


def configure(conn: Any) -> None:
    """Apply ``PRAGMAS`` to a DB-API connection to the file."""
    for pragma in PRAGMAS:
        conn.execute(pragma)


def _connect(path: Path | None, *, autocheckpoint: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path) if path is not None else ":memory:", isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    configure(conn)
    if not autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, float]:
    """Copy what the log holds back into the database file, never waiting: frames in the log, copied, seconds."""
    began = time.monotonic()
    _busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames), int(done), time.monotonic() - began


def _rows(conn: sqlite3.Connection, stmt: Compiled, values: Mapping[str, Any], step: int = 0) -> list[Row]:
    """Run one statement to its end (a cursor left open would keep its transaction open)."""
    try:
        cursor = conn.execute(stmt.sql, stmt.named(values))
        return cursor.fetchall() if stmt.returns_rows else []
    except sqlite3.IntegrityError:
        raise Duplicate(step) from None


def _first(conn: sqlite3.Connection, stmt: Compiled, values: Mapping[str, Any]) -> Row | None:
    rows = _rows(conn, stmt, values)
    return rows[0] if rows else None


def _count(conn: sqlite3.Connection, stmt: Compiled, values: Mapping[str, Any]) -> int:
    return conn.execute(stmt.sql, stmt.named(values)).rowcount


def _atomically(conn: sqlite3.Connection, steps: Sequence[Step]) -> list[Row | None]:
    """The steps of one write (the writer's savepoint undoes them all if one is refused)."""
    out: list[Row | None] = []
    for index, (stmt, values) in enumerate(steps):
        rows = _rows(conn, stmt, values, index)
        if stmt.returns_rows and not rows:
            raise Missing(index)
        out.append(rows[0] if rows else None)
    return out


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute(REVISION_SQL).fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return None
        raise
    return row[0] if row is not None else None


def sqlite_revision(path: Path) -> str | None:
    """The Alembic revision of an SQLite file, read directly (``None``: no file, or never migrated)."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
    try:
        return _revision(conn)
    except sqlite3.Error:
        return None  # whatever it is, the migration will say it better
    finally:
        conn.close()


class SqliteRunner:
    """A ``Runner`` over one SQLite file (or one in-memory database, with a single lane)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        connect = functools.partial(_connect, path)
        # An in-memory database exists once per connection: there, the writer's is the only one.
        self._writer = _WriteLane(functools.partial(_connect, path, autocheckpoint=path is None))
        self._reader: _Lane | _WriteLane = self._writer if path is None else _Lane("read", connect)
        self._inline = None if path is None else _InlineReader(connect, cast(_Lane, self._reader))
        self._checkpointer = None if path is None else _Lane("checkpoint", connect)
        self._checkpoints: asyncio.Task[None] | None = None
        #: The checkpoint of the last bounded delete's pages, which the next one waits for.
        self._paced: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return "SqliteRunner()"

    @property
    def commits(self) -> int:
        """Write transactions committed so far: fewer than the writes when they shared commits."""
        return self._writer.commits

    async def open(self) -> None:
        """Make the file's folder and start checkpointing; connections open on first use."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._checkpointer is not None:
            self._checkpoints = asyncio.get_running_loop().create_task(self._checkpoint_forever(self._checkpointer))

    async def _checkpoint_forever(self, lane: _Lane) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            with contextlib.suppress(StoreUnavailable):  # logged by the lane; the next round tries again
                frames, _done, _took = await lane.run(_checkpoint)
                if frames < RESTART_FRAMES:
                    continue
                # Again at once: what was written during the first pass.  Only when that was quick and left
                # little is the rest handed to the writer, whose checkpoint holds up the writes behind it.
                frames, done, took = await lane.run(_checkpoint)
                if took <= CATCH_UP_SECONDS and frames - done <= CATCH_UP_FRAMES:
                    self._writer.catch_up = True

    async def close(self) -> None:
        """Stop checkpointing, close the connections and stop their threads."""
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        if self._paced is not None:
            await self._paced
        await self._writer.close()
        if self._inline is not None:
            self._inline.close()
        if self._reader is not self._writer:
            await self._reader.close()
        if self._checkpointer is not None:
            await self._checkpointer.close()

    async def read(self, stmt: Compiled, values: Mapping[str, Any]) -> Row | None:
        """A read: on this thread (``_InlineReader``), or on the writing lane for an in-memory database."""
        work = functools.partial(_first, stmt=stmt, values=values)
        return await (self._inline.run(work) if self._inline is not None else self._reader.run(work))

    async def write(self, stmt: Compiled, values: Mapping[str, Any]) -> Row | None:
        """One write in a transaction of its own, on the writing lane."""
        return await self._writer.run(functools.partial(_first, stmt=stmt, values=values))

    async def count(self, stmt: Compiled, values: Mapping[str, Any]) -> int:
        """One write on the writing lane (the store's bounded deletes); rows changed.

        Paced by the checkpointer (see the module's notes): this waits until
        the pages of the last such write are checkpointed, then writes, then
        has the checkpointer copy what it wrote, while other writes go on.
        """
        if self._paced is not None:
            await self._paced
        changed = await self._writer.run(functools.partial(_count, stmt=stmt, values=values))
        if self._checkpointer is not None and changed:
            self._paced = asyncio.create_task(self._checkpoint_once(self._checkpointer))
        return changed

    @staticmethod
    async def _checkpoint_once(lane: _Lane) -> None:
        with contextlib.suppress(StoreUnavailable):  # logged by the lane; the checkpoints go on
            await lane.run(_checkpoint)

    async def atomically(self, steps: Sequence[Step]) -> list[Row | None]:
        """The steps in one ``BEGIN IMMEDIATE`` transaction, on the writing lane."""
        return await self._writer.run(functools.partial(_atomically, steps=steps))

    async def revision(self) -> str | None:
        """The Alembic revision the file is at."""
        return await self._reader.run(_revision)
