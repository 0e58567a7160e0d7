"""Reading a process's CPU time, here or from the stat line read over there; CPU priority."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness import procs
from harness.procs import cpu_seconds, stat_cpu_seconds


def test_a_programs_cpu_comes_from_its_stat_line_whatever_its_name():
    """The name may hold spaces and parentheses: the fields count from the last one."""
    tck = os.sysconf("SC_CLK_TCK")
    line = "4242 (rsync (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 " + f"{tck} {2 * tck} {tck} 0 20 0 1 0"
    assert stat_cpu_seconds(line) == 4.0


def test_this_process_has_spent_some_cpu_and_a_gone_one_none():
    assert cpu_seconds(os.getpid()) > 0
    assert cpu_seconds(2**22 + 1) is None   # above pid_max's limit: no such process


def _nice(tid: int) -> int:
    stat = Path(f"/proc/{tid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])  # field 19, nice


@pytest.mark.skipif(os.geteuid() != 0, reason="lowering the nice value back needs root")
def test_the_lowest_priority_holds_for_the_thread_and_what_it_starts_and_ends_with_it():
    tid = threading.get_native_id()
    before = _nice(tid)
    with procs.lowest_priority():
        assert _nice(tid) == procs.LOWEST_PRIORITY
        started = subprocess.run(["cat", "/proc/self/stat"], capture_output=True, text=True, check=True).stdout
        assert int(started[started.rindex(")") + 2:].split()[16]) == procs.LOWEST_PRIORITY
    assert _nice(tid) == before


def test_every_thread_of_another_process_goes_to_the_lowest_priority():
    child = subprocess.Popen([sys.executable, "-c", "import threading, time\n"
                              "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
                              "print(flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        tasks = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        assert len(tasks) == 2
        procs.make_lowest_priority(child.pid)
        assert [_nice(t) for t in tasks] == [procs.LOWEST_PRIORITY] * 2
    finally:
        child.kill()
        child.wait()
    procs.make_lowest_priority(child.pid)  # gone: nothing to do, no error
