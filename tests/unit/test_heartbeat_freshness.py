"""Replayed heartbeats prove nothing: the high-water mark and the challenge at first contact."""

from ha.heartbeat.freshness import Freshness
from ha.heartbeat.packet import Heartbeat, State


def beat(seq: int, echo: int = 0, incarnation: int = 100, state: State = State.ACTIVE, nonce: int = 0) -> Heartbeat:
    return Heartbeat("node1", incarnation, seq, state, nonce=nonce or 1000 + seq, echo=echo)


def handshake(f: Freshness, now: float = 0.0, incarnation: int = 100) -> None:
    """The peer hears one of our beats and echoes its nonce."""
    ours = f.next_nonce(now)
    assert f.accept("hb", beat(1, echo=ours, incarnation=incarnation), now + 0.01)


def test_a_new_life_counts_only_once_it_echoes_a_recent_nonce_of_ours():
    f = Freshness(window=1.0)
    assert not f.accept("hb", beat(1, echo=0), 0.0)
    assert f.heard == 1001  # its challenge is answered in our next beat
    ours = f.next_nonce(0.1)
    assert f.accept("hb", beat(2, echo=ours), 0.2)
    assert f.heard == 1002


def test_an_echo_older_than_the_window_is_no_answer():
    f = Freshness(window=1.0)
    ours = f.next_nonce(0.0)
    assert not f.accept("hb", beat(1, echo=ours), 1.5)
    assert f.dropped == {"a life of the peer that has not answered our challenge yet": 1}


def test_within_a_life_only_higher_sequence_numbers_count():
    f = Freshness(window=1.0)
    handshake(f)
    assert f.accept("hb", beat(2), 0.1) and f.accept("hb", beat(5), 0.2)
    assert not f.accept("hb", beat(5), 0.3) and not f.accept("hb", beat(3), 0.3)
    assert f.dropped == {"replayed or out of order": 2}


def test_a_capture_of_an_earlier_life_cannot_pass_for_the_peer():
    f = Freshness(window=1.0)
    handshake(f, incarnation=100)
    old_fault = beat(40, echo=12345, incarnation=99, state=State.FAULT)
    assert not f.accept("hb", old_fault, 0.5)
    assert (f.life, f.marks) == (100, {"hb": 1})  # the mark still follows the live peer


def test_a_restarted_node_needs_no_clock_to_refuse_replays():
    """This node restarted: no mark. A capture of the peer's current life echoes an old nonce."""
    f = Freshness(window=1.0)
    assert not f.accept("hb", beat(77, echo=42), 0.0)
    handshake(f, now=0.1)


def test_a_peer_whose_clock_stepped_back_is_accepted_after_the_challenge():
    f = Freshness(window=1.0)
    handshake(f, incarnation=100)
    ours = f.next_nonce(1.0)
    assert f.accept("hb", beat(1, echo=ours, incarnation=50), 1.1)
    assert (f.life, f.marks) == (50, {"hb": 1})


def test_nonces_older_than_the_window_are_forgotten():
    f = Freshness(window=1.0)
    old = f.next_nonce(0.0)
    f.next_nonce(2.0)
    assert old not in f.sent and len(f.sent) == 1


def test_each_beat_counts_once_on_every_link_it_travels():
    """A beat goes out on every link with one sequence number: each link keeps its own mark."""
    f = Freshness(window=1.0)
    handshake(f)
    assert f.accept("hb", beat(2), 0.1) and f.accept("service", beat(2), 0.1)
    assert not f.accept("service", beat(2), 0.2)  # the same copy again on that link
    assert f.accept("service", beat(3), 0.2)
