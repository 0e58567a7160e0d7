"""Content sync: the file format, the staleness and crash arithmetic on hand-made logs, and the
writer and reader programs on local directories (the lab tests sync them over the network)."""

import json
import subprocess
import sys
import time

import pytest

from harness.contentsync import analysis
from harness.contentsync.analysis import Op, Seen, analyse, spread
from harness.contentsync.content import SIZES, render, size_of, verify
from harness.contentsync.reader import Reader
from harness.contentsync.writer import Writer

# --- the file format -------------------------------------------------------------------------


def test_a_whole_file_verifies_and_every_part_of_it_does_not():
    data = render("page-00003.html", 7, 1000)
    assert verify(data) == ("page-00003.html", 7)
    assert data.startswith(b"halab-sync page-00003.html v7 1000\n") and data.endswith(b"\nend v7\n")
    assert len(data) == len(b"halab-sync page-00003.html v7 1000\n") + 1000 + len(b"\nend v7\n")
    for cut in (0, 10, 40, len(data) // 2, len(data) - 1):
        assert verify(data[:cut]) is None, cut
    assert verify(data + b"x") is None
    assert verify(data.replace(b"end v7", b"end v8")) is None  # a trailer of another version


def test_versions_differ_in_their_payload_and_sizes_cycle():
    assert render("a", 1, 64)[20:] != render("a", 2, 64)[20:]
    assert [size_of(n) for n in range(len(SIZES) + 1)] == [*SIZES, SIZES[0]]
    assert verify(render("a", 1, 0)) == ("a", 1)


# --- the arithmetic ----------------------------------------------------------------------------


def test_spread_is_nearest_rank_and_empty_is_none():
    assert spread([]) == {"count": 0, "p50": None, "p99": None, "max": None}
    values = [float(v) for v in range(1, 101)]
    assert spread(values) == {"count": 100, "p50": 50.0, "p99": 99.0, "max": 100.0}
    assert spread([3.0]) == {"count": 1, "p50": 3.0, "p99": 3.0, "max": 3.0}


def test_staleness_counts_from_the_write_to_the_first_view_of_it_or_a_newer_version():
    ops = [Op(10.0, "write", "a", 1), Op(10.5, "write", "a", 2), Op(11.0, "write", "b", 1)]
    seen = [Seen(9.0, "seen", "a", 1),          # before the write: an older copy, not a view of it
            Seen(11.2, "seen", "a", 2),         # v1 was never shown: v2 supersedes it
            Seen(11.4, "seen", "b", 1)]
    out = analyse(ops, seen)
    assert out["writes"]["count"] == 3
    assert out["writes"]["max"] == pytest.approx(1.2)    # a v1: 10.0 -> 11.2
    assert out["writes"]["p50"] == pytest.approx(0.7)    # a v2: 10.5 -> 11.2; b: 0.4
    assert out["unreflected"] == 0 and out["partial_views"] == 0


def test_since_leaves_the_starting_files_out_of_the_staleness():
    ops = [Op(1.0, "write", "a", 1), Op(10.0, "write", "a", 2)]
    seen = [Seen(5.0, "seen", "a", 1), Seen(10.25, "seen", "a", 2)]
    assert analyse(ops, seen, since=9.0)["writes"]["count"] == 1
    assert analyse(ops, seen, since=9.0)["writes"]["p50"] == pytest.approx(0.25)
    assert analyse(ops, seen)["writes"]["count"] == 2


def test_a_deletion_propagates_only_by_a_gone_seen_after_it():
    ops = [Op(1.0, "write", "a", 1), Op(2.0, "delete", "a", 0)]
    transient = [Seen(1.5, "seen", "a", 1), Seen(1.7, "gone", "a"), Seen(1.8, "seen", "a", 1)]
    out = analyse(ops, transient)
    assert out["deletions"]["of"] == 1 and out["deletions"]["count"] == 0  # never after 2.0: tar
    assert out["unreflected"] == 1
    assert out["missing_for_a_moment"] == 1
    out = analyse(ops, [*transient, Seen(2.3, "gone", "a")])
    assert out["deletions"]["count"] == 1 and out["deletions"]["p50"] == pytest.approx(0.3)
    assert out["missing_for_a_moment"] == 1 and out["unreflected"] == 0


def test_a_file_gone_for_a_moment_after_its_deletion_is_not_a_deletion_propagated():
    # tar read the file before it was deleted and, unpacking it, unlinks the old copy first
    ops = [Op(1.0, "write", "a", 1), Op(2.0, "delete", "a", 0)]
    seen = [Seen(1.5, "seen", "a", 1), Seen(2.1, "gone", "a"), Seen(2.2, "partial", "a"), Seen(2.3, "seen", "a", 1)]
    out = analyse(ops, seen)
    assert out["deletions"]["of"] == 1 and out["deletions"]["count"] == 0 and out["unreflected"] == 1
    out = analyse(ops, [*seen, Seen(3.0, "gone", "a")])  # then it goes for good
    assert out["deletions"]["count"] == 1 and out["deletions"]["p50"] == pytest.approx(1.0)


def test_partial_views_are_counted():
    ops = [Op(1.0, "write", "a", 1)]
    out = analyse(ops, [Seen(1.1, "partial", "a"), Seen(1.2, "seen", "a", 1)])
    assert out["partial_views"] == 1 and out["writes"]["p50"] == pytest.approx(0.2)


def test_what_the_standby_lacks_at_a_crash_and_the_rpo():
    ops = [Op(1.0, "write", "kept", 1),
           Op(2.0, "write", "stale", 1), Op(8.0, "write", "stale", 2), Op(9.0, "write", "stale", 3),
           Op(3.0, "write", "missing", 1),
           Op(4.0, "write", "zombie", 1), Op(7.0, "delete", "zombie", 0),
           Op(5.0, "write", "torn", 1),
           Op(6.0, "write", "gone", 1), Op(6.5, "delete", "gone", 0),
           Op(12.0, "write", "after", 1)]           # after the crash: not the primary's at the crash
    seen = [Seen(1.5, "seen", "kept", 1), Seen(2.5, "seen", "stale", 1), Seen(4.5, "seen", "zombie", 1),
            Seen(9.5, "partial", "torn"), Seen(6.2, "seen", "gone", 1), Seen(6.8, "gone", "gone")]
    lost = analyse(ops, seen, crash_at=10.0)["lost_at_crash"]
    assert {k: lost[k] for k in ("missing", "stale", "not_deleted", "partial")} == \
        {"missing": 1, "stale": 1, "not_deleted": 1, "partial": 1}
    # stale v2 and v3, missing v1, torn v1: four writes (the zombie is no loss); the oldest not
    # received was missing's at 3.0 (torn's write at 5.0 arrived, then the crash tore it)
    assert lost["writes_lost"] == 4
    assert lost["rpo"] == pytest.approx(7.0)


def test_a_torn_file_counts_its_writes_but_not_its_age():
    ops = [Op(1.0, "write", "torn", 1), Op(9.0, "write", "torn", 2)]
    lost = analyse(ops, [Seen(1.5, "seen", "torn", 1), Seen(9.5, "partial", "torn")], crash_at=10.0)["lost_at_crash"]
    assert lost["partial"] == 1 and lost["writes_lost"] == 2 and lost["rpo"] == 0.0


def test_a_deletion_that_did_not_arrive_is_no_data_lost():
    ops = [Op(1.0, "write", "z", 1), Op(2.0, "delete", "z", 0)]
    lost = analyse(ops, [Seen(1.5, "seen", "z", 1)], crash_at=5.0)["lost_at_crash"]
    assert lost["not_deleted"] == 1 and lost["writes_lost"] == 0 and lost["rpo"] == 0.0


def test_nothing_lacking_is_an_rpo_of_zero():
    ops = [Op(1.0, "write", "a", 1)]
    lost = analysis.lost_at_crash({"a": ops}, {"a": [Seen(1.1, "seen", "a", 1)]}, crash_at=2.0)
    assert lost == {"missing": 0, "stale": 0, "not_deleted": 0, "partial": 0, "writes_lost": 0, "rpo": 0.0}


# --- the writer and the reader, for real on local directories ----------------------------------


def test_the_writer_renames_whole_files_in_and_logs_each_operation(tmp_path):
    root, stage, log = tmp_path / "www", tmp_path / "stage", tmp_path / "ops.jsonl"
    root.mkdir()
    stage.mkdir()
    writer = Writer(root, stage, log, seed=3)
    for _ in range(5):
        writer.create()
    for _ in range(40):
        writer.step()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 45 and [line["op"] for line in lines[:5]] == ["write"] * 5
    assert {line["op"] for line in lines[5:]} == {"write", "delete"}
    on_disk = {p.name: verify(p.read_bytes()) for p in root.iterdir()}
    assert on_disk == {name: (name, v) for name, v in writer.files.items()}
    assert not list(stage.iterdir())
    again = Writer(root, stage, log, seed=4)  # a second writer carries on after the files there
    assert again.files == writer.files and again.next_number == writer.next_number


def test_the_reader_notes_versions_parts_and_gone_files(tmp_path):
    root, log = tmp_path / "www", tmp_path / "views.jsonl"
    root.mkdir()
    reader = Reader(root, log)
    (root / "a").write_bytes(render("a", 1, 100))
    (root / ".a.tmp").write_bytes(b"rsync's file in progress")
    reader.poll()
    (root / "b").write_bytes(render("b", 1, 100)[:50])
    reader.poll()
    reader.poll()  # unchanged: nothing new noted
    (root / "a").write_bytes(render("a", 2, 300))
    (root / "b").unlink()
    reader.poll()
    views = [(v["kind"], v["name"], v["version"]) for v in map(json.loads, log.read_text().splitlines())]
    assert views == [("seen", "a", 1), ("partial", "b", 0), ("seen", "a", 2), ("gone", "b", 0)]


def test_writer_and_reader_programs_run_and_stop_by_themselves(tmp_path):
    root, stage = tmp_path / "www", tmp_path / "stage"
    root.mkdir()
    stage.mkdir()
    base = [sys.executable, "-m", "harness.contentsync.writer", "--root", str(root), "--stage", str(stage),
            "--log", str(tmp_path / "ops.jsonl")]
    subprocess.run([*base, "--prepare", "3"], check=True, timeout=30)
    reader = subprocess.Popen([sys.executable, "-m", "harness.contentsync.reader", "--root", str(root), "--log",
                               str(tmp_path / "views.jsonl"), "--seconds", "1.5"], stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdout.readline() == "watching\n"
    started = time.monotonic()
    subprocess.run([*base, "--rate", "20", "--seconds", "0.5"], check=True, timeout=30)
    assert reader.wait(timeout=10) == 0 and time.monotonic() - started < 5
    ops = [Op(**json.loads(line)) for line in (tmp_path / "ops.jsonl").read_text().splitlines()]
    seen = [Seen(**json.loads(line)) for line in (tmp_path / "views.jsonl").read_text().splitlines()]
    assert len(ops) == 3 + 10
    out = analyse(ops, seen)
    assert out["unreflected"] == 0 and out["partial_views"] == 0  # the same directory: everything shows
    assert out["writes"]["max"] < 0.5


def test_a_write_superseded_by_a_deletion_is_reflected_when_the_file_goes():
    ops = [Op(1.0, "write", "a", 1), Op(1.2, "delete", "a", 0)]
    out = analyse(ops, [Seen(1.1, "gone", "a"), Seen(1.6, "gone", "a")])
    # the write is reflected by the file being gone after its deletion (at 1.6, not at 1.1)
    assert out["writes"]["count"] == 1 and out["writes"]["p50"] == pytest.approx(0.6)
    assert out["deletions"]["count"] == 1 and out["deletions"]["p50"] == pytest.approx(0.4)
