"""When a fault's measurement on the live lab may stop: the service answered again for a while."""

from harness import livemeasure
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
    # fates known up to 9.0 s; 8.0 to 9.0 all answered; the fault at 5 s
    assert livemeasure._settled(requests(10.0, lost=(5.0, 7.9)), after=5.0)
    assert not livemeasure._settled(requests(10.0, lost=(5.0, 8.5)), after=5.0)  # a loss in the last known second
    assert not livemeasure._settled(requests(10.0), after=8.5)  # too soon after the fault (or the mending)
    assert not livemeasure._settled(requests(7.0), after=5.0)   # nothing sent in that second: not answering
