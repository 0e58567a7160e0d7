"""Reading a process's CPU time, here or from the stat line read over there."""

import os

from harness.procs import cpu_seconds, stat_cpu_seconds


def test_a_programs_cpu_comes_from_its_stat_line_whatever_its_name():
    """The name may hold spaces and parentheses: the fields count from the last one."""
    tck = os.sysconf("SC_CLK_TCK")
    line = "4242 (rsync (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 " + f"{tck} {2 * tck} {tck} 0 20 0 1 0"
    assert stat_cpu_seconds(line) == 4.0


def test_this_process_has_spent_some_cpu_and_a_gone_one_none():
    assert cpu_seconds(os.getpid()) > 0
    assert cpu_seconds(2**22 + 1) is None   # above pid_max's limit: no such process
