"""What the writer makes of an error: definitely not written, or indeterminate."""
import json
import types

import pytest

from harness import dbwriter
from harness.writecheck import Write


class SqlError(Exception):
    """psycopg's error as the writer sees it: the server's SQLSTATE and severity (None: no server
    message at all, a client-side failure)."""

    def __init__(self, sqlstate, severity=None):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate
        self.diag = types.SimpleNamespace(severity_nonlocalized=severity)


@pytest.mark.parametrize("exc", [TimeoutError(), OSError("refused"), SqlError("08006"), SqlError(None),
                                 SqlError("28P01", "FATAL")])
def test_nothing_is_written_before_the_connection_is_made(exc):
    assert dbwriter.outcome_of(exc, connected=False) == "failed"


@pytest.mark.parametrize("sqlstate", ["25006", "23505", "42P01", "53300", "57014"])
def test_an_error_the_server_reported_rolled_the_statement_back(sqlstate):
    assert dbwriter.outcome_of(SqlError(sqlstate, "ERROR"), connected=True) == "failed"


@pytest.mark.parametrize("exc", [TimeoutError(), OSError("reset"), SqlError(None), SqlError("57P01", "FATAL"),
                                 SqlError("08006"), SqlError("XX000", "PANIC"), SqlError("57P02", "FATAL")])
def test_a_lost_answer_or_an_ended_session_after_connecting_is_indeterminate(exc):
    assert dbwriter.outcome_of(exc, connected=True) == "timeout"


def test_the_log_reads_back_into_writes(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"id": 1, "invoked": 0.5, "completed": 0.6, "outcome": "ok", "node": "db1",
                                "timeline": 1}) + "\n\n")
    assert dbwriter.read(path) == [Write(1, 0.5, 0.6, "ok", "db1", 1)]


def test_bad_rates_are_refused_with_the_allowed_range(capsys):
    with pytest.raises(SystemExit) as exit_:
        dbwriter.main(["--host", "h", "--passfile", "p", "--rate", "0", "--out", "o"])
    assert exit_.value.code == 2 and "--rate 1 to 2000" in capsys.readouterr().err


def test_sigterm_ends_the_writing_and_the_writes_in_flight_finish():
    """A test that has seen what it waited for stops the writer rather than wait out its seconds."""
    import asyncio
    import os
    import signal
    import time

    async def write(i: int) -> Write:
        await asyncio.sleep(0.05)   # in flight when the signal comes
        return Write(i, time.monotonic(), time.monotonic(), "ok", "db1", 1)

    async def main() -> list[Write]:
        asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
        return await dbwriter.run(write, rate=100, seconds=10, first_id=1)

    began = time.monotonic()
    writes = asyncio.run(main())
    assert time.monotonic() - began < 2
    assert 10 <= len(writes) <= 30 and all(w.outcome == "ok" for w in writes)   # each one started, finished
    assert [w.id for w in writes] == list(range(1, len(writes) + 1))
