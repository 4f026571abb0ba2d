"""Switching over from the reference plugin: ``connect-plugin migrate --from-reference`` on the real PostgreSQL server.

The reference's ``session`` table is test data (``tests/reference_support.py``),
filled as the reference fills it; the copy runs as a deployer runs it, a
``connect-plugin`` process; and callers and agents then talk to a real plugin.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from connect_plugin import codes, migrate
from connect_plugin.config import load_settings
from tests.reference_support import (
    add_reference_session,
    counts,
    has_reference_table,
    make_reference_table,
    migrate_from_reference,
    our_sessions,
    postgres,
    reference_rows,
)
from tests.sse_client import EventStream
from tests.support import cli_command, dtmf_of, free_port, run_private, write_config

# Reference sessions: (DTMF code, result code), each as the reference made them.
WAITING = ("4815162342", "Wait1ngF0rItsResultCode000000001")
WITH_RESULT = ("2718281828", "HasAResultAlready000000000000002")
LINKED = ("1414213562", "LinkedAtTheOldPlugin000000000003")
LINKED_EARLY = ("1732050807", "LinkedBeforeItsResult00000000004")
IDLE = ("5772156649", "IdleForTwoHours00000000000000005")
NO_PURPOSE = ("6180339887", "NoPurposeGiven000000000000000006")
LINKED_CALL = "0f6b1a2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
EARLY_CALL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
NEW_CALL = "5f3a9c2e-1b7d-4e0a-9c1e-2d4b6a8f0e11"


@pytest.fixture
def reference_db(empty_postgres: str) -> str:
    """A database as the reference left it: its ``session`` table, in a time zone far from UTC."""
    make_reference_table(empty_postgres)
    return empty_postgres


@pytest.fixture
def database_url(reference_db: str) -> str:
    """The plugins these tests start use the reference's database, as a switch-over in place does."""
    return reference_db


def add(url: str, session: tuple[str, str], purpose: str | None = "report_move", **row) -> None:
    add_reference_session(url, session[0], session[1], purpose, **row)


def config_for(tmp_path, keyset, url: str, name: str = "c.toml"):
    return write_config(tmp_path / name, keyset, database_url=url, log_level="off")


def secret_of(config) -> bytes:
    """The code secret the plugin with this configuration uses."""
    return codes.code_secret_for(load_settings(config, environ={}))


def assert_tells_nothing(output: str, *values: str) -> None:
    """No code, result code, contact id or token in what the command printed."""
    for value in values:
        assert value not in output


def test_live_sessions_are_copied_as_this_plugin_stores_them_and_the_old_table_is_left_alone(
        reference_db, tmp_path, keyset, mint):
    with_result = mint(attributes={"fullname": "Jan Jansen"})
    with_feedback = mint(attributes={"email": "jane@example.com"}, session_url="https://auth.example.nl/s/1")
    ages = {WAITING: 300, WITH_RESULT: 600, LINKED: 60, LINKED_EARLY: 30}
    written = time.time()
    add(reference_db, WAITING, ago=ages[WAITING])
    add(reference_db, WITH_RESULT, "request_permit", ago=ages[WITH_RESULT], jwe=with_result)
    add(reference_db, LINKED, ago=ages[LINKED], contact=LINKED_CALL, jwe=with_feedback)
    add(reference_db, LINKED_EARLY, ago=ages[LINKED_EARLY], contact=EARLY_CALL)
    add(reference_db, IDLE, ago=2 * 3600)
    add(reference_db, NO_PURPOSE, None)
    before = reference_rows(reference_db)
    config = config_for(tmp_path, keyset, reference_db)

    started = time.time()
    result = migrate_from_reference(config)

    assert result.returncode == 0, result.stderr
    assert counts(result.stdout) == {"copied": 4, "idle": 1, "unusable": 1}
    assert f"database is at revision {migrate.head_revision()}" in result.stdout
    secret = secret_of(config)
    stored = {row.code_key: row for row in our_sessions(reference_db)}
    assert set(stored) == {codes.code_key(secret, s[0]) for s in ages}
    expected = {WAITING: ("report_move", None, None), WITH_RESULT: ("request_permit", None, with_result),
                LINKED: ("report_move", LINKED_CALL, with_feedback), LINKED_EARLY: ("report_move", EARLY_CALL, None)}
    for session, (purpose, contact, jwe) in expected.items():
        row = stored[codes.code_key(secret, session[0])]
        assert row.result_key == hashlib.sha256(session[1].encode()).hexdigest()
        assert (row.purpose, row.contact_id, row.auth_result) == (purpose, contact, jwe)
        assert bool(row.feedback) is (jwe is not None)  # a link decrypts it to see whether it wants feedback
        # Its last activity as an epoch time: the reference's local time read in the database's time zone.
        assert written - ages[session] - 2 <= row.last_activity <= started - ages[session] + 2
        assert row.created_at == row.last_activity
    assert reference_rows(reference_db) == before
    assert_tells_nothing(result.stdout + result.stderr, *(s[0] for s in ages), *(s[1] for s in ages),
                         LINKED_CALL, EARLY_CALL, with_result, with_feedback)


@pytest.mark.gen_test(timeout=180)
async def test_a_caller_who_got_a_code_from_the_old_plugin_is_linked_by_the_new_one_and_the_agent_sees_the_result(
        reference_db, plugin_factory, tmp_path, keyset, mint):
    await asyncio.to_thread(add, reference_db, WITH_RESULT, "request_permit", ago=120,
                            jwe=mint(attributes={"fullname": "Jan Jansen"}))
    await asyncio.to_thread(add, reference_db, LINKED, ago=60, contact=LINKED_CALL,
                            jwe=mint(attributes={"email": "jane@example.com"}))
    await asyncio.to_thread(add, reference_db, WAITING, ago=30)
    copied = await asyncio.to_thread(migrate_from_reference, config_for(tmp_path, keyset, reference_db))
    assert copied.returncode == 0, copied.stderr
    plugin = await plugin_factory()

    # The caller types the code the old plugin gave them: the new plugin links the call.
    assert (await plugin.api.link(WITH_RESULT[0], NEW_CALL)).status == 200
    info = await plugin.api.info(NEW_CALL)
    assert info.status == 200
    assert info.json == {"purpose": "request_permit",
                         "auth_result": {"status": "succes", "attributes": {"fullname": "Jan Jansen"}}}
    # A call the old plugin linked shows its result at the new one.
    info = await plugin.api.info(LINKED_CALL)
    assert info.json["auth_result"] == {"status": "succes", "attributes": {"email": "jane@example.com"}}
    # A result posted to an attr_url the old plugin handed out reaches the copied session.
    posted = await plugin.api.post_result(f"/session_result/{WAITING[1]}", mint(attributes={"bsn": "999990019"}))
    assert posted.status == 200
    assert (await plugin.api.link(WAITING[0], EARLY_CALL)).status == 200
    assert (await plugin.api.info(EARLY_CALL)).json["auth_result"]["attributes"] == {"bsn": "999990019"}


def test_running_again_copies_nothing_twice_and_takes_what_is_new(reference_db, tmp_path, keyset, mint):
    config = config_for(tmp_path, keyset, reference_db)
    add(reference_db, WAITING, ago=300)
    add(reference_db, LINKED_EARLY, ago=200)
    add(reference_db, WITH_RESULT, ago=100)
    first = migrate_from_reference(config)
    assert counts(first.stdout) == {"copied": 3}, first.stderr

    # Meanwhile, at the old plugin: a new session, a result, and a link.
    add(reference_db, LINKED, ago=0)
    jwe = mint(attributes={"fullname": "Jan Jansen"})
    postgres(reference_db, "UPDATE session SET attr_jwt = $1, lastActivity = now() WHERE dtmfcode = $2",
             jwe, WITH_RESULT[0])
    postgres(reference_db, "UPDATE session SET sessionid = $1, lastActivity = now() WHERE dtmfcode = $2",
             EARLY_CALL, LINKED_EARLY[0])
    second = migrate_from_reference(config)
    third = migrate_from_reference(config)

    assert second.returncode == 0, second.stderr
    assert counts(second.stdout) == {"copied": 1, "updated": 2, "unchanged": 1}
    assert counts(third.stdout) == {"copied": 0, "unchanged": 4}
    secret = secret_of(config)
    stored = {row.code_key: row for row in our_sessions(reference_db)}
    assert len(stored) == 4
    with_result = stored[codes.code_key(secret, WITH_RESULT[0])]
    assert (with_result.auth_result, bool(with_result.feedback)) == (jwe, True)
    assert stored[codes.code_key(secret, LINKED_EARLY[0])].contact_id == EARLY_CALL
    assert "no replay record" in second.stdout


@pytest.mark.gen_test(timeout=180)
async def test_sessions_that_clash_with_this_plugins_are_skipped_counted_and_never_shown(
        reference_db, plugin_factory, tmp_path, keyset):
    await asyncio.to_thread(migrate.upgrade, reference_db)
    plugin = await plugin_factory()  # the new plugin already serves: two of its sessions
    ours = await plugin.api.start("request_permit")
    linked = await plugin.api.start("request_permit")
    assert (await plugin.api.link(dtmf_of(linked), NEW_CALL)).status == 200
    # The old plugin gave out the same code, and linked the same call (as unlikely as that is).
    await asyncio.to_thread(add, reference_db, (dtmf_of(ours), WAITING[1]))
    await asyncio.to_thread(add, reference_db, LINKED, contact=NEW_CALL)
    await asyncio.to_thread(add, reference_db, WITH_RESULT)

    result = await asyncio.to_thread(migrate_from_reference, config_for(tmp_path, keyset, reference_db))

    assert result.returncode == 0, result.stderr
    assert counts(result.stdout) == {"copied": 1, "code clash": 1, "contact clash": 1}
    assert_tells_nothing(result.stdout + result.stderr, dtmf_of(ours), NEW_CALL, WAITING[1], LINKED[0])
    # Ours are untouched: the code still belongs to our session, the call to our other one.
    assert (await plugin.api.link(dtmf_of(ours), EARLY_CALL)).status == 200
    assert (await plugin.api.info(EARLY_CALL)).json["purpose"] == "request_permit"
    assert (await plugin.api.info(NEW_CALL)).json["purpose"] == "request_permit"


def _keyword_form(url: str) -> str:
    """The same database as a libpq ``key=value`` string (one of the forms ``database_url`` takes)."""
    parts = urlsplit(url)
    return (f"host={parts.hostname} port={parts.port or 5432} user={parts.username} dbname={parts.path[1:]}"
            + (f" password={parts.password}" if parts.password else ""))


@pytest.mark.parametrize("ours", ["sqlite", "postgres"])
def test_from_copies_out_of_another_database(reference_db, ours, tmp_path, keyset, request):
    target = f"sqlite:///{tmp_path / 'ours.sqlite3'}" if ours == "sqlite" else request.getfixturevalue("postgres_url")
    config = config_for(tmp_path, keyset, target)
    add(reference_db, WAITING, ago=10)
    add(reference_db, LINKED, ago=20, contact=LINKED_CALL)

    result = migrate_from_reference(config, "--from", _keyword_form(reference_db))

    assert result.returncode == 0, result.stderr
    assert counts(result.stdout) == {"copied": 2}
    secret = secret_of(config)  # on SQLite: the secret file beside the database, as serve uses it
    assert {(r.code_key, r.contact_id) for r in our_sessions(target)} == {
        (codes.code_key(secret, WAITING[0]), None), (codes.code_key(secret, LINKED[0]), LINKED_CALL)}
    assert len(reference_rows(reference_db)) == 2
    again = migrate_from_reference(config, "--from", reference_db)
    assert counts(again.stdout) == {"copied": 0, "unchanged": 2}


@pytest.mark.parametrize("where", ["same database", "--from"])
def test_drop_reference_table_drops_it_once_the_sessions_are_copied(reference_db, where, tmp_path, keyset,
                                                                   postgres_url):
    add(reference_db, WAITING)
    add(reference_db, IDLE, ago=2 * 3600)
    target = reference_db if where == "same database" else postgres_url
    config = config_for(tmp_path, keyset, target)
    source = () if where == "same database" else ("--from", reference_db)

    result = migrate_from_reference(config, *source, "--drop-reference-table")

    assert result.returncode == 0, result.stderr
    assert counts(result.stdout) == {"copied": 1, "idle": 1}
    assert "table session dropped" in result.stdout
    assert not has_reference_table(reference_db)
    assert len(our_sessions(target)) == 1
    again = migrate_from_reference(config, *source)
    assert again.returncode == 2
    assert "has no table 'session'" in again.stderr


@pytest.mark.parametrize(("table", "status", "says"), [
    (None, 2, "the reference's database has no table 'session'"),
    ("CREATE TABLE session (id serial PRIMARY KEY, dtmf text, resultcode text, lastactivity timestamp, "
     "sessionid text, purpose text, attr_jwt text)", 2, "has no column dtmfcode"),
    ("CREATE TABLE session (id serial PRIMARY KEY, dtmfcode text, resultcode text, lastactivity bigint, "
     "sessionid text, purpose text, attr_jwt text)", 2, "column lastactivity of type bigint"),
    ("CREATE VIEW session AS SELECT 1 AS x", 2, "is not a table"),
])
def test_a_database_without_the_reference_table_is_a_one_line_error(empty_postgres, table, status, says,
                                                                   tmp_path, keyset):
    if table is not None:
        postgres(empty_postgres, table)
    result = migrate_from_reference(config_for(tmp_path, keyset, empty_postgres))
    assert result.returncode == status
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("connect-plugin: migrate --from-reference: ")
    assert says in lines[0]


@pytest.mark.parametrize(("database", "options", "status", "says"), [
    ("sqlite", ("--from", "postgresql://postgres@127.0.0.1:{port}/nowhere"), 1,
     "connect-plugin: database unavailable: cannot reach the reference's database (ConnectionRefusedError"),
    ("sqlite", (), 2, "connect-plugin: configuration error: --from: this plugin's database is not PostgreSQL"),
    ("sqlite", ("--from", "sqlite:///elsewhere.sqlite3"), 2,
     "connect-plugin: configuration error: --from: must be the reference's PostgreSQL database"),
    ("postgres", ("--reference-timezone", "Mars/Olympus_Mons"), 2,
     "connect-plugin: configuration error: --reference-timezone: is not a time zone PostgreSQL knows"),
])
def test_unusable_sources_are_one_line_errors(reference_db, database, options, status, says, tmp_path, keyset):
    target = f"sqlite:///{tmp_path / 'ours.sqlite3'}" if database == "sqlite" else reference_db
    options = tuple(o.format(port=free_port()) for o in options)
    result = migrate_from_reference(config_for(tmp_path, keyset, target), *options)
    assert result.returncode == status
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(says)
    assert "Traceback" not in result.stderr


def test_reference_options_need_from_reference(tmp_path, keyset):
    config = config_for(tmp_path, keyset, f"sqlite:///{tmp_path / 'ours.sqlite3'}")
    result = subprocess.run([*cli_command(), "migrate", "--config", str(config), "--drop-reference-table"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "connect-plugin: configuration error: --drop-reference-table: only with " \
                                    "--from-reference"


def test_times_the_reference_wrote_in_another_time_zone_are_read_with_reference_timezone(
        reference_db, tmp_path, keyset):
    # The reference's connections ran in UTC, although the database's own time zone is far away.
    written = time.time()
    add(reference_db, WAITING, ago=300, timezone="UTC")
    config = config_for(tmp_path, keyset, reference_db)
    assert counts(migrate_from_reference(config).stdout) == {"copied": 0, "idle": 1}  # 12+ hours "ago"

    result = migrate_from_reference(config, "--reference-timezone", "UTC")

    assert counts(result.stdout) == {"copied": 1}
    assert "local time in UTC" in result.stdout
    [row] = our_sessions(reference_db)
    assert written - 300 - 2 <= row.last_activity <= time.time() - 300 + 2


def test_times_in_the_future_are_taken_as_now_and_noted(reference_db, tmp_path, keyset):
    add(reference_db, WAITING, timezone="Pacific/Kiritimati")  # UTC+14: ahead of the database's time zone
    started = time.time()
    result = migrate_from_reference(config_for(tmp_path, keyset, reference_db))
    assert counts(result.stdout) == {"copied": 1}
    assert "1 session(s) had their last activity in the future" in result.stdout
    [row] = our_sessions(reference_db)
    assert started <= row.last_activity <= time.time()


def test_drop_waits_for_a_write_of_the_old_plugin_in_flight_and_copies_it(reference_db, tmp_path, keyset):
    import asyncpg

    add(reference_db, WAITING)
    config = config_for(tmp_path, keyset, reference_db)

    async def scenario() -> tuple[int, str, str]:
        old_plugin = await asyncpg.connect(reference_db)
        observer = await asyncpg.connect(reference_db)
        try:
            writing = old_plugin.transaction()
            await writing.start()  # the old plugin starts a session, not yet committed
            await old_plugin.execute("INSERT INTO session (dtmfcode, resultcode, purpose, lastActivity) "
                                     "VALUES ($1, $2, 'report_move', now())", *LINKED)
            copy = await asyncio.create_subprocess_exec(
                *cli_command(), "migrate", "--config", str(config), "--from-reference", "--drop-reference-table",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            for _ in range(1200):  # until the copy waits for the old plugin's lock (at most a minute)
                if await observer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                           "AND datname = current_database()"):
                    break
                await asyncio.sleep(0.05)
            await writing.commit()
            out, err = await asyncio.wait_for(copy.communicate(), 120)
            return copy.returncode or 0, out.decode(), err.decode()
        finally:
            await old_plugin.close()
            await observer.close()

    status, out, err = run_private(scenario())

    assert status == 0, err
    assert counts(out) == {"copied": 2}
    assert not has_reference_table(reference_db)


@pytest.mark.gen_test(timeout=180)
async def test_a_result_copied_later_reaches_the_agents_open_display_at_once(
        reference_db, plugin_factory, tmp_path, keyset, mint):
    config = config_for(tmp_path, keyset, reference_db)
    await asyncio.to_thread(add, reference_db, LINKED, "request_permit", contact=LINKED_CALL)
    assert (await asyncio.to_thread(migrate_from_reference, config)).returncode == 0
    plugin = await plugin_factory()
    await asyncio.wait_for(plugin.runtime.parts.notifier.connected.wait(), 30)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{LINKED_CALL}")
    try:
        assert (await stream.next_event("session")).json["state"] == "waiting"
        # The authentication plugin posts to the attr_url the old plugin handed out, which still reaches it.
        await asyncio.to_thread(postgres, reference_db, "UPDATE session SET attr_jwt = $1, lastActivity = now() "
                                "WHERE dtmfcode = $2", mint(attributes={"fullname": "Jan Jansen"}), LINKED[0])
        again = await asyncio.to_thread(migrate_from_reference, config)
        assert counts(again.stdout) == {"copied": 0, "updated": 1}
        event = (await stream.next_event("session", timeout=30)).json
        assert event["state"] == "verified"
    finally:
        stream.close()
