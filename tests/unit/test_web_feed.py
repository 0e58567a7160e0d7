"""The live view's arithmetic: tailing growing files, the probe strip and its outage, event records."""

import json

import pytest

from harness.web.feed import Strip, Tail, event_line, probe_line


def test_a_tail_gives_complete_lines_once_and_waits_for_a_partial_one(tmp_path):
    log = tmp_path / "probe.log"
    tail = Tail(log)
    assert tail.lines() == []  # not there yet
    log.write_text("1.0 server1\n2.0 serv")
    assert tail.lines() == ["1.0 server1"]
    assert tail.lines() == []
    with log.open("a") as f:
        f.write("er2\n3.0 -\n")
    assert tail.lines() == ["2.0 server2", "3.0 -"]


def test_a_tail_reads_a_replaced_file_from_its_start_and_can_begin_at_the_end(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text("old line one\nold line two\n")
    assert Tail(log, from_end=True).lines() == []
    tail = Tail(log)
    assert len(tail.lines()) == 2
    log.write_text("new\n")  # shorter: a rotated log
    assert tail.lines() == ["new"]


@pytest.mark.parametrize(("line", "parsed"), [("812.5 server2", (812.5, "server2")), ("812.5 -", (812.5, None)),
                                              ("sending 20/s over udp", None), ("x server1", None), ("", None)])
def test_probe_lines(line, parsed):
    assert probe_line(line) == parsed


def test_the_outage_runs_while_nothing_is_answered_and_is_kept_once_answers_return():
    strip = Strip(rate=10)  # a request every 0.1 s; quiet after 0.3 s
    for i in range(10):
        strip.add(100 + i / 10, "server1")
    assert strip.frame(101.15)["outage_s"] is None  # 0.25 s after the last answer (100.9): within three gaps
    assert strip.frame(101.25)["outage_s"] == pytest.approx(0.35)
    frame = strip.frame(102.4)                       # 1.5 s of silence
    assert frame["outage_s"] == pytest.approx(1.5)
    for i in range(5):
        strip.add(101.0 + i / 10, None)   # the losses arrive a timeout late
    strip.add(103.1, "server2")           # the first answer after: the outage was 100.9 -> 103.1
    frame = strip.frame(103.2)
    assert frame["outage_s"] is None and frame["last_outage_s"] == pytest.approx(2.2)
    assert frame["lost"] == 5 and frame["answered"] == {"server1": 10, "server2": 1}


def test_a_late_answer_of_an_old_request_does_not_end_or_shorten_an_outage():
    strip = Strip(rate=10)
    strip.add(100.0, "server1")
    strip.add(102.0, "server2")
    strip.add(100.1, "server1")  # arrives after a newer one: changes nothing
    assert strip.last_outage_s == pytest.approx(2.0) and strip.last_answer == 102.0


def test_a_frame_carries_only_what_is_new_and_forgets_what_left_the_strip():
    strip = Strip(rate=100, window_s=15)
    strip.add(10.0, "server1")
    assert strip.frame(10.1)["marks"] == [[10.0, "server1"]]
    assert strip.frame(10.2)["marks"] == []
    strip.frame(30.0)
    assert list(strip.marks) == []


def test_rates_and_shares_count_the_second_whose_fate_is_known():
    strip = Strip(rate=100)
    for i in range(300):  # 3 s at 100/s, alternating; one in ten lost
        strip.add(i / 100, None if i % 10 == 9 else ("backend1" if i % 2 else "backend2"))
    frame = strip.frame(3.0)  # counts requests sent from 1.0 to 2.0
    assert frame["rates"] == {"backend1": 40.0, "backend2": 50.0}
    assert frame["shares"]["backend2"] == pytest.approx(50 / 90)


def test_event_records_as_the_page_shows_them():
    record = {"monotonic": 5.0, "wall": 1795750196.9, "source": "halab-vrrp", "subject": "VI_1", "from": "BACKUP",
              "to": "MASTER", "reason": "master down timer expired", "priority": 100}
    assert event_line(json.dumps(record), "server2") == {
        "wall": 1795750196.9, "host": "server2", "source": "halab-vrrp", "subject": "VI_1", "from": "BACKUP",
        "to": "MASTER", "reason": "master down timer expired"}
    keepalived = {"wall": 1.5, "source": "keepalived", "subject": "VI_1", "to": "MASTER", "reason": "notify"}
    assert event_line(json.dumps(keepalived), "server1")["from"] is None
    assert event_line("not json", "h") is None and event_line('{"wall": 1}', "h") is None


def test_a_page_that_opens_gets_the_whole_strip_and_the_others_lose_no_mark():
    strip = Strip(rate=10)
    strip.add(1.0, "server1")
    strip.add(1.1, None)
    replay = strip.replay(1.2)
    assert replay["replay"] is True and replay["marks"] == [[1.0, "server1"], [1.1, None]] and replay["lost"] == 1
    assert strip.frame(1.2)["marks"] == [[1.0, "server1"], [1.1, None]]  # still new for the pages already open
