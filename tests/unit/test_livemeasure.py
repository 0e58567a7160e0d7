"""One fault on the live lab: when the measurement may stop, and that the lab is always mended."""

import pytest

from harness import livemeasure
from harness.errors import HalabError
from harness.probe import Request


def requests(until: float, lost: tuple[float, float] | None = None) -> list[Request]:
    out = []
    for i in range(int(until * 20)):
        sent = i / 20
        ok = lost is None or not lost[0] <= sent < lost[1]
        out.append(Request(i, sent, sent if ok else None, "server2" if ok else None))
    return out


def test_settled_once_a_second_of_known_fates_was_all_answered_after_the_fault(monkeypatch):
    monkeypatch.setattr(livemeasure.time, "monotonic", lambda: 10.0)
    # fates known up to 8.75 s (1.25 s back); 8.25 to 8.75 all answered; the fault at 5 s
    assert livemeasure._settled(requests(10.0, lost=(5.0, 8.2)), after=5.0)
    assert not livemeasure._settled(requests(10.0, lost=(5.0, 8.5)), after=5.0)  # a loss in the last known stretch
    assert not livemeasure._settled(requests(10.0), after=8.3)  # too soon after the fault (or the mending)
    assert not livemeasure._settled(requests(8.0), after=5.0)   # nothing sent in that stretch: not answering
    # a partition: the old server answers on until the new one has fenced it and taken over
    assert livemeasure._settled(requests(10.0), after=5.0, by="server2")
    still_old = [Request(r.seq, r.sent, r.replied, "server1" if r.sent < 8.6 else r.server) for r in requests(10.0)]
    assert not livemeasure._settled(still_old, after=5.0, by="server2") and livemeasure._settled(still_old, after=5.0)


def test_recent_waits_until_the_probe_has_run_that_long_and_keeps_the_known_fates(monkeypatch, tmp_path):
    log = tmp_path / "probe.log"
    log.write_text("".join(f"{i / 20:.3f} server{i % 2 + 1}\n" for i in range(100)))  # 0 to 4.95 s
    monkeypatch.setattr(livemeasure, "probe_log", lambda _s: log)
    now = iter([4.0, 6.25, 6.25, 6.25])
    monkeypatch.setattr(livemeasure.time, "monotonic", lambda: next(now))
    monkeypatch.setattr(livemeasure.time, "sleep", lambda _s: None)
    got = livemeasure.recent(tmp_path / "lab.sock", 3.0)
    assert [r.sent for r in got] == [i / 20 for i in range(40, 100)]  # 2.0 to 5.0 s: known by 6.25 s


def test_the_lab_is_mended_even_when_watching_fails(monkeypatch, tmp_path):
    log = tmp_path / "probe.log"
    log.write_text("".join(f"{i / 20:.3f} server1\n" for i in range(400)))
    asked = []
    monkeypatch.setattr(livemeasure, "status", lambda _s: {"probe": {"running": True, "log": str(log)},
                                                           "vip": {"claimed_by": ["server1"]}})
    monkeypatch.setattr(livemeasure, "ask", lambda _s, argv, timeout=60.0: asked.append(argv) or "")
    monkeypatch.setattr(livemeasure, "_settled", lambda _r, after, by=None: True)
    monkeypatch.setattr(livemeasure, "analyse", lambda *_: (_ for _ in ()).throw(OSError("the log went away")))
    with pytest.raises(OSError):
        livemeasure.measure(tmp_path / "lab.sock", "link-cut server1", 8.0)
    assert asked == [["fault", "link-cut", "server1"], ["fault", "restore"]]


def test_a_lab_that_refuses_a_verb_is_one_problem_and_its_own_fix(monkeypatch):
    refusal = "This lab has no host 'server9'.\nFix: Choose one of: server1, server2."
    monkeypatch.setattr(livemeasure.control, "request", lambda *_a, **_k: (2, refusal))
    with pytest.raises(HalabError) as caught:
        livemeasure.ask(None, ["fault", "crash", "server9"])
    assert caught.value.problem == "`halab fault crash server9` failed on the lab: This lab has no host 'server9'."
    assert caught.value.fix == "Choose one of: server1, server2."
