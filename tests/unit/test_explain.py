"""Why an outage lasted as long as it did, in words: each kind of pace, the takeover, the parts."""

from harness.explain import explain
from tests.unit.run_result import ADVERTS, T0, result


def test_the_explanation_names_the_window_the_takeover_and_the_outage():
    words = explain(result())
    assert words[0] == "The fault: cut-link server1-s1 at 0 s; the pace is set by halab VRRP, advert_int 1 s."
    assert "due 2.61 to 3.61 s after the fault, counted from the last advert" in words[1]
    assert words[2] == ('server2 took over at 3.490 s (halab-vrrp VI_1: BACKUP -> MASTER, because '
                        '"master down timer expired").')
    assert words[3].startswith("The client saw an outage of 3500 ms, from 0.000 to 3.500 s: 14 of 40")
    assert words[4] == ("So the outage, 3500 ms, is +0 ms from the last answered request to the fault +3490 ms from "
                        "the fault to the takeover +10 ms from the takeover to the first request answered after the "
                        "outage.")


def test_an_event_before_the_fault_is_no_takeover_and_a_run_that_never_recovers_says_so():
    words = explain(result(outage=None, events=result()["agent_events"][:1]))
    assert not any("took over" in w for w in words)
    assert words[-1] == "The client was never served again after the fault (32 of 40 requests unanswered)."


def test_a_balancer_run_names_its_first_reaction():
    events = [{"at": T0 + 0.24, "host": "backend2", "source": "halab-controller", "subject": "probe 10.0.0.2:7000",
               "old": "up", "state": "down", "reason": "check failed"}]
    words = explain(result(outage=0.03, events=events, options={"check_interval": 0.1, "fall": 3,
                                                                        "fault": "process-kill", "lb": "sdn"}))
    assert words[1].endswith("after the fault: 3 failed checks, every 0.1 s.")
    assert words[2] == ('The first agent to react, at 0.240 s: halab-controller probe 10.0.0.2:7000: up -> down, '
                        'because "check failed".')


def test_without_adverts_or_with_a_master_that_said_goodbye_there_is_no_timer_to_place():
    r = result()
    assert not any(w.startswith("Here the last advert") for w in explain(r))
    r["adverts"] = [{"at": T0 - 0.5, "host": "server1"}]
    r["options"]["fault"] = "agent-term"  # priority 0: the backup does not wait out its timer
    assert not any(w.startswith("Here the last advert") for w in explain(r))


def test_each_kind_of_pace_is_counted_from_its_own_start():
    def since(options):
        return explain(result(options=options))[1]

    assert since({"advert_int": 1.0, "fault": "link-cut"}).endswith(
        "counted from the last advert the backup heard, which left up to one advert_int before the fault: "
        "Master_Down_Interval 3 x 1 s + skew 0.61 s = 3.61 s.")
    assert since({"interval": 0.1, "detector": "deadtime", "fault": "node-crash"}) == (
        "By the protocol the takeover is due 0.20 to 0.30 s after the fault, counted from the last beat heard, up to "
        "one interval before the fault: deadtime (3 x 0.1 s) without a heartbeat; fencing the peer comes after.")
    assert since({"check_interval": 0.5, "fall": 2, "fault": "process-kill"}) == (
        "By the protocol the takeover is due 0.50 to 1.00 s after the fault, counted from the first failed check, up "
        "to one interval after the fault: 2 failed checks, every 0.5 s.")


def test_an_event_at_the_fault_itself_counts_and_an_answer_before_the_logged_takeover_says_before():
    events = [{"at": T0, "host": "node2", "source": "halab-heartbeat", "subject": "node2", "old": None,
               "state": "ACTIVE", "reason": "node1 fenced"}]
    words = explain(result(outage=0.3, events=events, options={"interval": 0.1}))
    assert words[1] == 'node2 took over at 0.000 s (halab-heartbeat node2: - -> ACTIVE, because "node1 fenced").'
    assert words[3] == ("So the outage, 300 ms, is +0 ms from the last answered request to the fault +0 ms from the "
                        "fault to the takeover +300 ms from the takeover to the first request answered after the "
                        "outage.")
    events[0]["at"] = T0 + 0.31
    assert explain(result(outage=0.3, events=events))[-1].endswith(
        "+310 ms from the fault to the takeover -10 ms from the takeover to the first request answered after the "
        "outage: it had left before the takeover was logged.")


def test_the_adverts_place_the_backups_timer():
    r = result()
    r["adverts"] = ADVERTS
    assert explain(r)[2] == ("Here the last advert from server1 reached the client at -0.400 s, so the backup's timer "
                             "ran out at 3.209 s.")
