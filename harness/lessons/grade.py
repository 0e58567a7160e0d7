"""`halab lesson grade`: a student's progress as the files a teacher collects. One JSON report
and one JUnit XML file per student (CI dashboards and LMS importers read JUnit), and a row of
their own in a CSV shared by the class (rewritten whole, the other students' rows kept).

The grades are what the student's own checks found on the student's own lab: as trustworthy as
that machine; a teacher who wants to see it happen runs the checks again in front of them."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from ha.statusfile import write_atomically
from harness import about
from harness.errors import HalabError
from harness.lessons.model import Lesson
from harness.lessons.progress import Progress

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CSV_NAME = "grades.csv"


def check_student(student: str) -> str:
    if not STUDENT_ID.fullmatch(student):
        raise HalabError(f"--student {student!r} is not a student id halab can name files after.",
                         "Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit.")
    return student


def report(student: str, lessons: list[Lesson], mine: Progress) -> dict:
    """Every stage of every lesson: passed, failed at its last check, or not tried."""
    out = []
    for lesson in lessons:
        stages = []
        for stage in lesson.stages:
            key = f"{lesson.number}/{stage.name}"
            last = mine.attempts.get(key, {})
            result = "passed" if key in mine.passed else "failed" if last else "not tried"
            stages.append({"name": stage.name, "title": stage.title.en, "result": result, "at": last.get("at"),
                           "value": last.get("value"), "detail": last.get("detail", "")})
        out.append({"number": lesson.number, "title": lesson.title.en, "stages": stages,
                    "passed": sum(s["result"] == "passed" for s in stages)})
    total = sum(len(lesson["stages"]) for lesson in out)
    return {"student": student, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "halab": about.version(),
            "lessons": out, "passed": sum(lesson["passed"] for lesson in out), "stages": total}


def junit(r: dict) -> str:
    suites = ET.Element("testsuites", name=f"halab lessons: {r['student']}", tests=str(r["stages"]),
                        failures=str(_count(r, "failed")))
    for lesson in r["lessons"]:
        stages = lesson["stages"]
        suite = ET.SubElement(suites, "testsuite", name=f"lesson {lesson['number']}: {lesson['title']}",
                              tests=str(len(stages)), failures=str(sum(s["result"] == "failed" for s in stages)),
                              skipped=str(sum(s["result"] == "not tried" for s in stages)))
        for stage in stages:
            case = ET.SubElement(suite, "testcase", classname=f"{r['student']}.lesson{lesson['number']:02}",
                                 name=stage["name"])
            if stage["result"] == "failed":
                ET.SubElement(case, "failure", message=stage["detail"] or "the check failed")
            elif stage["result"] == "not tried":
                ET.SubElement(case, "skipped", message="not tried yet")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _count(r: dict, result: str) -> int:
    return sum(s["result"] == result for lesson in r["lessons"] for s in lesson["stages"])


def csv_rows(r: dict, existing: str) -> str:
    """The class's CSV with this student's row put in (replacing their earlier one); the other rows
    kept, column by column (a column the new header lacks is dropped, one it adds is empty)."""
    header = ["student", *(f"lesson {lesson['number']}" for lesson in r["lessons"]), "passed", "stages", "written"]
    row = dict(zip(header, [r["student"], *(f"{lesson['passed']}/{len(lesson['stages'])}" for lesson in r["lessons"]),
                            str(r["passed"]), str(r["stages"]), r["written"]], strict=True))
    kept = [old for old in csv.DictReader(io.StringIO(existing)) if old.get("student") not in (None, r["student"])]
    out = io.StringIO()
    writer = csv.DictWriter(out, header, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted([*kept, row], key=lambda x: x["student"]))
    return out.getvalue()


def write(r: dict, out: Path) -> list[Path]:
    """`<student>.json`, `<student>.xml` and the class's grades.csv in `out` (a folder the class may
    share: the CSV is rewritten under a lock, and only the files written are given to the user who
    typed sudo)."""
    try:
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        table = out / CSV_NAME
        mine = {out / f"{r['student']}.json": json.dumps(r, indent=1, ensure_ascii=False) + "\n",
                out / f"{r['student']}.xml": junit(r)}
        for path, text in mine.items():
            write_atomically(path, text)
        with (out / f".{CSV_NAME}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            write_atomically(table, csv_rows(r, table.read_text() if table.exists() else ""))
        written = [*mine, table]
        for path in written:
            path.chmod(0o640)  # the student's, and the group's (a teacher's), not every user's
            about.give_to_sudo_user(path)
        if created:
            about.give_to_sudo_user(out)  # a folder of its own: nobody else's files in it
    except OSError as exc:
        raise HalabError(f"{out}: the grades cannot be written ({exc.strerror}).",
                         "Name a directory you can write with --out.") from None
    return written
