"""The heartbeat agent's logic without a network: message codec, failure detectors, decisions."""

import hashlib
import hmac
import math

import pytest

from ha.heartbeat.detector import Arrivals, Detector
from ha.heartbeat.fsm import AnnounceResources, FencePeer, Node, Role, StartResources, StopResources, Transition, View
from ha.heartbeat.packet import Heartbeat, PacketError, State, decode, encode

SECRET = b"cluster-secret"


def signed(body: bytes) -> bytes:
    """The documented trailer: the first 16 bytes of HMAC-SHA256 over everything before it."""
    return body + hmac.new(SECRET, body, hashlib.sha256).digest()[:16]


def wire(state: int, node: bytes, flags=0, incarnation=0, seq=0, nonce=0, echo=0) -> bytes:
    """A heartbeat laid out by hand from the module's documented format, big-endian."""
    return signed(b"HBT2" + bytes([state, flags, len(node), 0]) + incarnation.to_bytes(8, "big")
                  + seq.to_bytes(8, "big") + nonce.to_bytes(8, "big") + echo.to_bytes(8, "big") + node)


def test_a_heartbeat_survives_the_wire():
    """Every field comes back as sent, each distinct so that no two can be swapped or dropped."""
    beat = Heartbeat("node1", incarnation=1_700_000_000_000_000_000, seq=42, state=State.ACTIVE,
                     nonce=0x1111_2222_3333_4444, echo=0x5555_6666_7777_8888, flags=0x01)
    assert decode(encode(beat, SECRET), SECRET) == beat


def test_the_bytes_on_the_wire_follow_the_documented_layout():
    """Two versions of the agent must agree byte for byte: magic, state, flags, id length, pad, four
    64-bit fields in network order, the id, the truncated HMAC."""
    beat = Heartbeat("n1", incarnation=0x0102030405060708, seq=9, state=State.STOPPING, nonce=10, echo=11, flags=1)
    data = wire(3, b"n1", flags=1, incarnation=0x0102030405060708, seq=9, nonce=10, echo=11)
    assert len(data) == 40 + 2 + 16
    assert encode(beat, SECRET) == data
    assert decode(data, SECRET) == beat


@pytest.mark.parametrize("node", ["a", "x" * 64, "é" * 32], ids=["1 byte", "64 bytes", "64 bytes of utf-8"])
def test_node_ids_from_1_to_64_bytes_are_carried(node):
    """The bounds themselves are valid ids; the shortest message (a 1-byte id) is not 'short'."""
    beat = Heartbeat(node, 1, 1, State.STANDBY)
    assert decode(encode(beat, SECRET), SECRET) == beat


@pytest.mark.parametrize(("node", "shown"), [("", "''"), ("x" * 65, repr("x" * 65)), ("é" * 33, repr("é" * 33))],
                         ids=["empty", "65 bytes", "66 bytes of utf-8"])
def test_a_node_id_outside_1_to_64_bytes_cannot_be_sent(node, shown):
    """The length field is one byte and the receiver needs an id: the error names the id and the limit."""
    with pytest.raises(ValueError) as refused:
        encode(Heartbeat(node, 1, 1, State.STANDBY), SECRET)
    assert str(refused.value) == f"node id {shown}: 1 to 64 bytes"


@pytest.mark.parametrize(("mangle", "reason"), [
    (lambda b: b[:0], "short"),
    (lambda b: b[:30], "short"),      # not even a header
    (lambda b: b[:-1], "short"),      # a header and a MAC, but no room for an id
    (lambda b: b"XXXX" + b[4:], "not a heartbeat"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "bad signature"),
    (lambda b: b + b"\0", "bad length"),
])
def test_a_damaged_or_forged_heartbeat_is_refused(mangle, reason):
    """The reason is what the status counts drops by: it must be exactly this one."""
    data = encode(Heartbeat("a", 1, 1, State.STANDBY), SECRET)
    with pytest.raises(PacketError) as refused:
        decode(mangle(data), SECRET)
    assert str(refused.value) == reason


def test_another_clusters_secret_does_not_pass():
    with pytest.raises(PacketError, match="bad signature"):
        decode(encode(Heartbeat("node1", 1, 1, State.STANDBY), b"other"), SECRET)


@pytest.mark.parametrize(("data", "detail"), [
    (wire(9, b"node1"), "9"),
    (wire(1, b"\xffnode"), "0xff"),
], ids=["unknown state", "id not utf-8"])
def test_a_signed_heartbeat_with_a_bad_field_is_refused_with_the_field(data, detail):
    """A member running other code may sign nonsense: a PacketError saying what, not a crash of the agent."""
    with pytest.raises(PacketError) as refused:
        decode(data, SECRET)
    assert str(refused.value).startswith("bad field (") and detail in str(refused.value)


def test_deadtime_declares_a_link_dead_only_after_the_silence():
    d = Detector(("hb", "service"), interval=0.1, deadtime=0.3)
    for t in (0.0, 0.1, 0.2):
        d.beat("hb", t)
        d.beat("service", t)
    assert d.alive_links(0.45) == ["hb", "service"]
    d.beat("service", 0.5)
    assert d.alive_links(0.55) == ["service"] and d.peer_alive(0.55)  # degraded, not dead
    assert not d.peer_alive(0.81)


def test_a_peer_never_heard_is_not_alive():
    assert not Detector(("hb",), interval=0.1, deadtime=0.3).peer_alive(0.0)


def beats(times, method="phi", deadtime=3.0, interval=0.1) -> Detector:
    """A one-link detector (phi threshold 8: one chance in 10^8 that the peer is fine) fed `times`."""
    d = Detector(("hb",), interval=interval, deadtime=deadtime, method=method, phi_threshold=8)
    for t in times:
        d.beat("hb", t)
    return d


STEADY = [round(i * 0.1, 9) for i in range(50)]  # every 100 ms; the last at 4.9
JITTERY = [round(0.2 * (i // 2) + 0.15 * (i % 2), 9) for i in range(50)]  # gaps 150, 50, 150 ms, ...; last 4.95


def test_phi_declares_a_steady_peer_dead_well_before_a_long_deadtime():
    """A regular 100 ms rhythm that stops is suspect after ~0.24 s, where a 3 s deadtime still waits."""
    phi, deadtime = beats(STEADY), beats(STEADY, method="deadtime")
    assert phi.peer_alive(4.9 + 0.2) and deadtime.peer_alive(4.9 + 0.2)
    assert not phi.peer_alive(4.9 + 0.3) and deadtime.peer_alive(4.9 + 0.3)
    assert phi.next_change(5.0) == pytest.approx(4.9 + 0.24, abs=0.01)
    assert deadtime.next_change(5.0) == pytest.approx(4.9 + 3.0)


def test_phi_waits_longer_on_a_jittery_link_than_on_a_steady_one():
    """Same mean rhythm, same silence since each one's last beat: the jittery history is given more time."""
    steady, jittery = beats(STEADY), beats(JITTERY)
    assert not steady.peer_alive(4.9 + 0.3) and jittery.peer_alive(4.95 + 0.3)
    assert not jittery.peer_alive(4.95 + 0.45)  # but a dead peer is still found
    assert jittery.next_change(5.0) == pytest.approx(4.95 + 0.38, abs=0.01)


def test_phi_grows_with_silence():
    """Suspicion is a level: low on a slightly late beat, beyond the threshold once the beats clearly stopped."""
    steady = beats(STEADY).arrivals["hb"]
    assert steady.phi(4.9 + 0.1, min_std=0.025) < 1
    assert 1 < steady.phi(4.9 + 0.18, min_std=0.025) < 8 < steady.phi(4.9 + 0.25, min_std=0.025)
    assert math.isinf(Arrivals(0.1).phi(0.0, min_std=0.01))  # never heard


def test_phi_of_a_very_long_silence_is_infinite_not_an_error():
    """The normal tail underflows to 0 after a silence of many spreads: that is certainty, not a math error."""
    assert math.isinf(beats(STEADY).arrivals["hb"].phi(4.9 + 10.0, min_std=0.025))
    assert not beats(STEADY).peer_alive(4.9 + 10.0)


@pytest.mark.parametrize(("times", "alive_after", "dead_after"), [
    ([1.0], 0.2, 0.3),                            # one beat: the configured 100 ms, spread 25 ms
    ([i * 0.5 for i in range(10)], 0.55, 0.7),    # a peer beating every 500 ms: its own rhythm counts
    ([0.0, 0.1, 0.4], 0.5, 0.8),                  # two gaps, 100 and 300 ms: mean 200 ms, spread 100 ms
], ids=["one beat", "slower than configured", "two unequal gaps"])
def test_phi_expects_the_rhythm_the_history_shows(times, alive_after, dead_after):
    """Before there is history, the configured interval is the prior; after, the observed mean and spread."""
    d = beats(times)
    assert d.peer_alive(times[-1] + alive_after)
    assert not d.peer_alive(times[-1] + dead_after)


def test_phi_remembers_the_last_window_of_gaps_only():
    """With a window of 3, one slow gap counts while it is among the last 3, and is forgotten after."""
    a = Arrivals(0.1, window=3)
    for t in (0.0, 1.0, 1.1, 1.2):  # gaps 1.0, 0.1, 0.1
        a.beat(t)
    assert a.phi(1.2 + 0.5, min_std=0.025) < 1
    a.beat(1.3)  # gaps 0.1, 0.1, 0.1
    assert a.phi(1.3 + 0.5, min_std=0.025) > 8


def test_phi_detector_tolerates_one_late_beat_but_not_a_dead_peer():
    """50 % late is within a steady link's spread, where a tight 0.12 s deadtime fires; 0.5 s of silence is not."""
    phi, deadtime = beats(STEADY, deadtime=0.12), beats(STEADY, method="deadtime", deadtime=0.12)
    assert phi.peer_alive(4.9 + 0.15) and not deadtime.peer_alive(4.9 + 0.15)
    assert not phi.peer_alive(4.9 + 0.5)


@pytest.mark.parametrize("method", ["deadtime", "phi"])
def test_next_change_is_the_moment_the_link_would_be_declared_dead(method):
    d = Detector(("hb",), interval=0.1, deadtime=0.3, method=method, phi_threshold=8)
    assert d.next_change(0.0) is None  # nothing heard: nothing to wait for
    for i in range(30):
        d.beat("hb", i * 0.1 + (0.01 if i % 2 else 0))
    change = d.next_change(2.95)
    assert change is not None and change > 2.95
    assert d.link_alive("hb", change - 1e-6) and not d.link_alive("hb", change + 1e-6)


@pytest.mark.parametrize("method", ["deadtime", "phi"])
def test_a_link_is_dead_at_the_very_moment_its_limit_is_reached(method):
    """Beats every 0.5 s; deadtime 0.5 s, or phi threshold log10(2): a beat as likely late as not, silence = mean.
    At that moment the link is dead and there is nothing left to wait for (the agent must not spin on it)."""
    d = Detector(("hb",), interval=0.5, deadtime=0.5, method=method, phi_threshold=math.log10(2))
    for t in (0.0, 0.5, 1.0):
        d.beat("hb", t)
    assert d.next_change(1.25) == 1.5
    assert d.link_alive("hb", 1.49)
    assert not d.link_alive("hb", 1.5)
    assert d.next_change(1.5) is None


def test_a_new_incarnation_starts_a_new_history():
    """A restarted peer's old rhythm (slow beats, and the gap across the restart) must not make us lenient."""
    old_life, new_life = [float(t) for t in range(10)], [20.0 + i * 0.1 for i in range(5)]
    remembered, forgotten, fresh = beats(old_life), beats(old_life), beats([])
    forgotten.forget()
    assert not forgotten.peer_alive(9.01)  # the old life's last beat is no proof of the new one
    for t in new_life:
        remembered.beat("hb", t)
        forgotten.beat("hb", t)
        fresh.beat("hb", t)
    silence = new_life[-1] + 0.5
    assert remembered.peer_alive(silence)  # the old slow history would still excuse half a second
    assert not forgotten.peer_alive(silence) and not fresh.peer_alive(silence)
    assert forgotten.next_change(new_life[-1]) == pytest.approx(fresh.next_change(new_life[-1]))


# --- who runs the resources -----------------------------------------------------------------


def node(name="node1", priority=200, peer_priority=100, **kw) -> Node:
    return Node(name, priority, "node2" if name == "node1" else "node1", peer_priority, grace=0.3, **kw)


def view(now, alive=True, state=State.STANDBY, quorum=True, healthy=True, links_up=True) -> View:
    return View(now, alive, state if alive else None, quorum, healthy, links_up)


def kinds(actions) -> list[str]:
    """The actions besides the role changes, by name."""
    names = {StartResources: "start", StopResources: "stop", FencePeer: "fence", AnnounceResources: "announce"}
    return [names[type(a)] for a in actions if not isinstance(a, Transition)]


def roles(actions) -> list[tuple[Role, Role]]:
    return [(a.old, a.new) for a in actions if isinstance(a, Transition)]


def test_every_change_of_role_is_a_transition_with_its_reason():
    n = node("node2", 100, 200, fence_retry=1.0)
    fence = n.step(view(1.0, alive=False))
    assert roles(fence) == [(Role.STANDBY, Role.FENCING)] and "silent" in fence[0].reason
    failed = n.fenced(False, 1.1, "controller unreachable")
    assert roles(failed) == [(Role.FENCING, Role.STANDBY)] and "controller unreachable" in failed[0].reason
    assert n.step(view(1.5, alive=False)) == []  # no change, no transition
    n.step(view(2.2, alive=False))
    assert roles(n.fenced(True, 2.3)) == [(Role.FENCING, Role.ACTIVE)]


def test_next_change_is_when_time_alone_can_decide():
    n = node("node2", 100, 200, fence_retry=1.0)
    assert n.next_change(0.0) == pytest.approx(0.3)  # the end of the startup grace
    n.step(view(1.0, alive=False))
    n.fenced(False, 1.1, "no answer")
    assert n.next_change(1.2) == pytest.approx(2.1)  # the retry pause
    assert n.next_change(5.0) is None


def test_the_node_that_outranks_takes_the_resources_at_startup():
    high, low = node(), node("node2", 100, 200)
    assert kinds(high.step(view(0.1))) == ["start"] and high.role is Role.ACTIVE
    assert kinds(low.step(view(0.1))) == [] and low.role is Role.STANDBY
    assert kinds(low.step(view(0.2, state=State.ACTIVE))) == []


def test_a_silent_peer_is_fenced_before_takeover_and_only_with_quorum():
    n = node("node2", 100, 200)
    assert n.step(view(0.1, alive=False)) == []  # still in the startup grace
    assert n.step(view(1.0, alive=False, quorum=False)) == [] and "no quorum" in n.reason
    assert n.step(view(1.1, alive=False)) == []  # quorum back: the grace again, to hear the peer first
    assert kinds(n.step(view(1.5, alive=False))) == ["fence"] and n.role is Role.FENCING
    assert n.step(view(1.6, alive=False)) == []  # one request at a time
    assert kinds(n.fenced(True, 1.7)) == ["start"] and n.role is Role.ACTIVE


def test_a_standby_that_hears_its_peer_again_no_longer_says_it_has_no_quorum():
    """Its status (and `halab diagnose`, which reads it) said "no quorum" long after a partition
    had healed: the words of a takeover held back outlived their cause."""
    n = node("node2", 100, 200)
    n.step(view(0.1, state=State.ACTIVE))
    n.step(view(1.0, alive=False, quorum=False))
    assert "no quorum" in n.reason
    n.step(view(1.1, state=State.ACTIVE))
    assert n.role is Role.STANDBY and n.reason == "startup"  # the last decision's reason again


def test_no_confirmation_no_takeover_and_a_pause_before_trying_again():
    n = node("node2", 100, 200, fence_retry=1.0)
    n.step(view(1.0, alive=False))
    assert kinds(n.fenced(False, 1.1, "controller unreachable")) == [] and n.role is Role.STANDBY
    assert n.step(view(1.5, alive=False)) == []
    assert kinds(n.step(view(2.2, alive=False))) == ["fence"]


def test_a_failed_monitor_releases_the_resources_and_the_peer_takes_them_without_fencing():
    active, standby = node(failure_timeout=5.0), node("node2", 100, 200)
    active.step(view(0.1))
    assert kinds(active.step(view(1.0, state=State.STANDBY, healthy=False))) == ["stop"]
    assert active.role is Role.FAULT and active.role.wire is State.FAULT
    assert kinds(standby.step(view(1.1, state=State.FAULT))) == ["start"]
    assert active.step(view(3.0, state=State.ACTIVE)) == [] and active.role is Role.FAULT
    active.step(view(6.1, state=State.ACTIVE))
    assert active.role is Role.STANDBY


@pytest.mark.parametrize("auto_failback", [True, False])
def test_auto_failback_decides_whether_the_preferred_node_gets_its_resources_back(auto_failback):
    low = node("node2", 100, 200, auto_failback=auto_failback)
    low.step(view(1.0, state=State.FAULT))  # node1 failed: node2 took over
    assert low.role is Role.ACTIVE
    actions = low.step(view(20.0, state=State.STANDBY))  # node1 is back and eligible
    assert kinds(actions) == (["stop"] if auto_failback else [])


def test_two_actives_after_a_healed_partition_resolve_to_the_one_that_outranks():
    high, low = node(), node("node2", 100, 200)
    high.step(view(0.1))
    low.step(view(1.0, alive=False))
    low.fenced(True, 1.1)
    assert low.role is Role.ACTIVE
    assert high.step(view(2.0, state=State.ACTIVE)) == []
    assert kinds(low.step(view(2.0, state=State.ACTIVE))) == ["stop"] and low.role is Role.STANDBY
    # clients followed low's takeover: once low says it let go, high announces the addresses again, once
    assert high.step(view(2.1, state=State.STANDBY)) == [
        AnnounceResources("node2 let go after both were active: clients may point at it")]
    assert high.step(view(2.2, state=State.STANDBY)) == []


def test_an_active_node_does_not_announce_when_the_peer_was_never_active_with_it():
    n = node()
    n.step(view(0.1))
    assert n.role is Role.ACTIVE
    assert n.step(view(0.2, state=State.FAULT)) == [] and n.step(view(0.3)) == []
    assert n.step(view(0.4, alive=False)) == [] and n.step(view(0.5)) == []


def test_a_vips_interface_down_means_fault_until_it_is_up_again():
    active, standby = node(failure_timeout=3.0), node("node2", 100, 200)
    active.step(view(0.1))
    assert active.role is Role.ACTIVE
    assert kinds(active.step(view(1.0, links_up=False))) == ["stop"] and active.role is Role.FAULT
    assert active.step(view(9.0, links_up=False)) == []  # long after failure_timeout: still FAULT
    assert active.step(view(11.9)) == []  # up again, but not for failure_timeout yet: a flap is damped
    assert roles(active.step(view(12.0))) == [(Role.FAULT, Role.STANDBY), (Role.STANDBY, Role.ACTIVE)]
    standby.step(view(0.1, state=State.ACTIVE))
    assert roles(standby.step(view(1.0, state=State.FAULT, links_up=False))) == [(Role.STANDBY, Role.FAULT)]
    assert standby.role is Role.FAULT  # it does not take over what it could not serve


def test_a_node_back_on_the_network_hears_the_peer_before_it_fences_it():
    """Fenced (its ports down), then unfenced: the peer was silent all along, as seen from here."""
    n = node("node2", 100, 200, failure_timeout=3.0)
    n.step(view(0.1, state=State.ACTIVE))
    n.step(view(1.0, alive=False, links_up=False))
    assert n.role is Role.FAULT
    assert roles(n.step(view(5.0, alive=False))) == [(Role.FAULT, Role.STANDBY)]  # no fencing yet
    assert n.step(view(5.2, alive=False)) == []
    assert kinds(n.step(view(5.31, alive=False))) == ["fence"]  # the grace (0.3 s) is over


def test_fencing_is_reported_on_the_wire_as_standby():
    assert Role.FENCING.wire is State.STANDBY and Role.ACTIVE.wire is State.ACTIVE


def test_the_startup_grace_ends_once_the_peer_has_been_heard():
    n = node("node2", 100, 200)
    n.grace = 30.0
    n.step(view(0.1, state=State.ACTIVE))
    assert kinds(n.step(view(1.0, alive=False))) == ["fence"]


def test_the_tiebreakers_echo_checksum_is_the_internet_checksum():
    from ha.inet import internet_checksum as checksum

    # RFC 1071's example words: 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement 220d).
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def _active_low() -> Node:
    """node2 (outranked) running the resources after node1 went to FAULT."""
    low = node("node2", 100, 200)
    low.step(view(1.0, state=State.FAULT))
    return low


def _fencing_low() -> Node:
    low = node("node2", 100, 200)
    low.step(view(1.0, alive=False))
    return low


def _active_high() -> Node:
    high = node()
    high.step(view(0.1))
    return high


@pytest.mark.parametrize(("decide", "old", "new", "job", "reason"), [
    (lambda: node().step(view(0.1)), Role.STANDBY, Role.ACTIVE, StartResources, "node2 is standby and we outrank it"),
    (lambda: node("node2", 100, 200).step(view(1.0, state=State.FAULT)), Role.STANDBY, Role.ACTIVE, StartResources,
     "node1 is in FAULT"),
    (lambda: node("node2", 100, 200).step(view(1.0, alive=False)), Role.STANDBY, Role.FENCING, FencePeer,
     "node1 is silent on every link"),
    (lambda: _fencing_low().fenced(True, 1.1, "switch port 3 down"), Role.FENCING, Role.ACTIVE, StartResources,
     "node1 fenced: switch port 3 down"),
    (lambda: _fencing_low().fenced(True, 1.1), Role.FENCING, Role.ACTIVE, StartResources, "node1 fenced"),
    (lambda: _fencing_low().fenced(False, 1.1, "no answer"), Role.FENCING, Role.STANDBY, None,
     "fencing node1 failed (no answer); not taking over"),
    (lambda: _active_high().step(view(1.0, healthy=False)), Role.ACTIVE, Role.FAULT, StopResources,
     "a resource monitor failed"),
    (lambda: _active_low().step(view(2.0, state=State.ACTIVE)), Role.ACTIVE, Role.STANDBY, StopResources,
     "node1 is active too and outranks us"),
    (lambda: _active_low().step(view(2.0, state=State.STANDBY)), Role.ACTIVE, Role.STANDBY, StopResources,
     "auto_failback to node1"),
    (lambda: _active_high().step(view(1.0, links_up=False)), Role.ACTIVE, Role.FAULT, StopResources,
     "a VIP's interface is down"),
    (lambda: node().step(view(0.0, links_up=False)), Role.STANDBY, Role.FAULT, None, "a VIP's interface is down"),
    (lambda: _in_fault()[0].step(view(3.5, state=State.ACTIVE)), Role.FAULT, Role.STANDBY, None,
     "failure timeout over"),
], ids=["outranks a standby", "peer in FAULT", "peer silent", "fenced, with detail", "fenced", "fencing failed",
        "monitor failed", "outranked active", "auto_failback", "VIP link down, active", "VIP link down, standby",
        "FAULT over"])
def test_each_decision_is_one_transition_and_its_job_with_the_reason_the_log_shows(decide, old, new, job, reason):
    """The event log and the worker's job say why, word for word: an operator reads these after a failover."""
    expected = [Transition(old, new, reason)] + ([job(reason)] if job else [])
    assert decide() == expected


def _in_grace() -> tuple[Node, float]:
    return node("node2", 100, 200), 0.0


def _pausing_after_a_failed_fence() -> tuple[Node, float]:
    n = _fencing_low()
    n.fenced(False, 1.1, "no answer")
    return n, 1.1


def _in_fault() -> tuple[Node, float]:
    n = node(failure_timeout=3.0)
    n.step(view(0.1))
    n.step(view(0.5, healthy=False))
    return n, 0.5


@pytest.mark.parametrize("setup", [_in_grace, _pausing_after_a_failed_fence, _in_fault],
                         ids=["grace over", "retry pause over", "failure timeout over"])
def test_at_the_moment_next_change_names_time_alone_changes_the_decision(setup):
    """The agent sleeps until next_change: waking exactly then, the node must act, not wait for another wake-up."""
    n, now = setup()
    role, wake = n.role, n.next_change(now)
    assert wake is not None and wake > now
    assert n.step(view(wake, alive=False)) != [] and n.role is not role


def test_quorum_back_after_a_partition_gives_the_peer_the_grace_to_be_heard_before_fencing():
    """node2 was the one cut off: its peer's silence meanwhile says nothing about the peer. When the
    partition heals the tie-breaker may answer a moment before node1's beats arrive; fencing node1
    then would take the service from a healthy node (once in a CI run of lesson 3)."""
    n = node("node2", 100, 200)
    n.grace = 3.0
    n.step(view(0.1, state=State.ACTIVE))  # node1 heard, active
    assert n.step(view(5.0, alive=False, quorum=False)) == [] and "no quorum" in n.reason
    assert n.step(view(5.1, alive=False)) == [] and n.role is Role.STANDBY  # quorum back, node1 not heard yet
    assert n.step(view(5.2, state=State.ACTIVE)) == []                    # and there it is
    assert n.step(view(9.0, state=State.ACTIVE)) == [] and n.role is Role.STANDBY
    m = node("node2", 100, 200)
    m.grace = 3.0
    m.step(view(0.1, state=State.ACTIVE))
    m.step(view(5.0, alive=False, quorum=False))
    assert m.step(view(5.1, alive=False)) == []
    assert kinds(m.step(view(8.2, alive=False))) == ["fence"]  # still silent after the grace: fenced


@pytest.mark.parametrize("method", ["deadtime", "phi"])
def test_a_link_whose_peer_port_went_down_is_dead_at_once_until_the_peer_is_heard_again(method):
    """Failover assist: the switch saw the peer's port go down; no deadtime to wait out."""
    d = Detector(("hb", "service"), interval=0.1, deadtime=0.3, method=method)
    for t in (0.0, 0.1, 0.2):
        d.beat("hb", t)
        d.beat("service", t)
    d.unplug("hb")
    assert d.alive_links(0.21) == ["service"] and d.peer_alive(0.21)
    d.unplug("service")
    assert not d.peer_alive(0.21) and d.next_change(0.21) is None
    d.beat("service", 0.25)
    assert d.alive_links(0.26) == ["service"]
