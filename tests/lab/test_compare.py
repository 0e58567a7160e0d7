"""`halab compare --quick` as a teacher would run it: the notes' six rows come back with numbers,
in both languages, and each row points the way the architectures differ."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.helpers import halab_leftovers, lesson
from tests.unit.test_lessons import lesson_line

pytestmark = [pytest.mark.mininet, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ROWS_KO = ["동작방식", "다운타임", "부하관련", "서비스 응답시간", "동기화", "서비스 연속성"]


def test_compare_quick_measures_every_row_of_the_notes_table(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness.entry", *lesson_line(8, "compare --quick"), "--lang", "ko",
                           "--json", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert halab_leftovers() == []
    out = json.loads(done.stdout)
    assert [r["name"] for r in out["rows"]["ko"]] == ROWS_KO
    assert [r["key"] for r in out["rows"]["en"]] == ["operation", "downtime", "load", "response", "sync", "continuity"]
    assert "판정" in done.stderr and "다운타임" in done.stderr  # the table, in Korean, on the terminal
    aa, as_ = out["figures"]["active-active"], out["figures"]["active-standby"]
    # how it runs, and the load: both backends serve, about half each; the master serves alone
    assert aa["serving"] == 2 and max(aa["shares"].values()) < 0.7 and as_["shares"]["server1"] == 1.0
    # downtime: a crash and a process death cost Active-Standby its failover, Active-Active far less
    for kind in ("crash", "process"):
        assert aa["outage"][kind]["median"] < as_["outage"][kind]["median"]
        assert aa["lost"][kind] < as_["lost"][kind]
    assert as_["outage"]["crash"]["median"] > 2.5  # VRRP at advert_int 1 s: 3 x 1 s plus skew
    # response time: the same at light load, and Active-Active holds more before it bends
    # (a knee at the very capacity of both servers may lie just above the sweep: then its top is the bound)
    aa_knee = aa["load"]["knee"] or (aa["load"]["knee_beyond"] == "above" and aa["load"]["steps"][-1]["offered"])
    assert as_["load"]["knee"] is not None and aa_knee > 1.3 * as_["load"]["knee"]
    assert abs(aa["load"]["steps"][0]["p50_ms"] - as_["load"]["steps"][0]["p50_ms"]) < 10
    # synchronisation: tar is later than event-driven rsync, and never deletes
    tar, lsyncd = (next(s for s in out["figures"]["sync"] if s["method"] == m) for m in ("tar", "lsyncd"))
    assert tar["writes"]["p50"] > lsyncd["writes"]["p50"]
    assert tar["deletions"]["of"] >= 3 and tar["deletions"]["count"] == 0 and tar["lost_at_crash"]["not_deleted"] > 0
    assert lsyncd["deletions"]["count"] >= lsyncd["deletions"]["of"] - 3
    assert tar["half_written"] >= 1  # tar unpacks in place: the reader caught files in part
    assert lsyncd["half_written"] == 0 and lsyncd["lost_at_crash"]["partial"] == 0  # rsync renames into place
    assert tar["bytes_per_transfer"] > 5e6 > lsyncd["bytes_per_transfer"]           # the whole root, or the changes
    run_dir = next(tmp_path.glob("*-compare"))
    page = (run_dir / "compare.html").read_text()
    assert page.count("<table") == 2 and "서비스 연속성" in page and "service continuity" in page
    assert page.count("data:image/png;base64,") == 3 and "http" not in page.replace("http-equiv", "")
    lessons_read_the_runs(tmp_path, as_["outage"]["crash"]["median"])


def lessons_read_the_runs(runs: Path, as_crash: float) -> None:
    """Lessons 7 and 8 grade what a student's runs measured: here the runs of this compare (its
    tar and lsyncd runs are sync runs like `halab run sync`'s), as the student's table shows them."""
    lesson(runs, "start", "7")
    assert "Read the number before the '/'" in lesson(runs, "check", "tar", "--value", "3", rc=1)
    assert "Right: tar does not carry deletions" in lesson(runs, "check", "tar", "--value", "0")
    said = lesson(runs, "check", "lsyncd")
    assert "never saw a half-written file" in said and "sync.writes.p50 = " in said
    lesson(runs, "start", "8")
    shown = round(as_crash * 1000) / 1000  # the table's milliseconds, in seconds
    assert "the recovery time your Active-Standby pays" in lesson(runs, "check", "capstone", "--value", f"{shown:g}")
    assert "Read the crash figure" in lesson(runs, "check", "capstone", "--value", f"{shown + 0.5:g}", rc=1)
