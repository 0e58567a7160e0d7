"""The one event schema: written by every daemon, read back by one reader, bounded on disk."""

import json

from ha import eventlog
from ha.eventlog import EventLog


def test_a_record_has_the_seven_fields_and_its_details(tmp_path):
    log = EventLog(tmp_path / "e.jsonl", "halab-vrrp")
    log.write("VI_1", "BACKUP", "MASTER", "master down timer expired", priority=100)
    [record] = eventlog.read(tmp_path / "e.jsonl")
    assert list(record)[:7] == list(eventlog.FIELDS)
    assert (record["source"], record["subject"], record["from"], record["to"], record["priority"]) == \
        ("halab-vrrp", "VI_1", "BACKUP", "MASTER", 100)


def test_a_wall_clock_only_record_gets_a_monotonic_time_and_its_from(tmp_path):
    """keepalived's notify script can only write the wall clock and the new state."""
    path = tmp_path / "k.jsonl"
    path.write_text(json.dumps({"wall": 1000.0, "source": "keepalived", "subject": "VI_1", "to": "BACKUP"}) + "\n"
                    + json.dumps({"wall": 1002.5, "source": "keepalived", "subject": "VI_1", "to": "MASTER"}) + "\n"
                    + '{"wall": 1003, "subj')  # cut short by a crash
    first, second = eventlog.read(path)
    assert second["from"] == "BACKUP" and second["monotonic"] - first["monotonic"] == 2.5


def test_a_large_log_moves_aside_instead_of_filling_the_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(eventlog, "MAX_BYTES", 500)
    log = EventLog(tmp_path / "e.jsonl", "x")
    for i in range(20):
        log.write("s", None, str(i), "r")
    assert (tmp_path / "e.jsonl.1").exists() and (tmp_path / "e.jsonl").stat().st_size <= 500 + 200


def test_an_unwritable_log_is_counted_not_raised(tmp_path):
    (tmp_path / "dir").mkdir()
    log = EventLog(tmp_path / "dir", "x")  # a directory where the file should be
    log.write("s", None, "up", "r")
    assert log.failed_writes == 1
