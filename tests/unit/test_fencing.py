"""The fencing device's rules, with a fake switch: signed, fresh, once; every address or none;
a node's place not moved by a spoofed ARP; and a client that never waits past its deadline."""

import socket
import threading
import time
from types import SimpleNamespace

import pytest

from controller.fencing import Fencer
from controller.locations import LOCATION_AGE_S, Locations
from ha.heartbeat import fencing

SECRET = b"a-cluster-secret-of-some-length"


class FakeSwitch:
    """Records what the controller sends; answers every barrier at once."""

    def __init__(self, fencer: Fencer, dpid: int = 1) -> None:
        self.id, self.fencer, self.sent, self.xid = dpid, fencer, [], 0
        from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

        self.ofproto, self.ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser
        self.ports = {p: SimpleNamespace(hw_addr="02:00:00:00:00:01") for p in range(1, 6)}

    def set_xid(self, msg) -> None:
        self.xid += 1
        msg.xid = self.xid

    answers_barriers = True

    def send_msg(self, msg) -> None:
        self.sent.append(msg)
        if type(msg).__name__ == "OFPBarrierRequest" and self.answers_barriers:
            self.fencer.confirmed(msg.xid)

    def port_mods(self) -> list[int]:
        return [m.port_no for m in self.sent if type(m).__name__ == "OFPPortMod"]


@pytest.fixture
def device():
    fencer = Fencer(SECRET, Locations(), {})
    switch = FakeSwitch(fencer)
    fencer.datapaths[switch.id] = switch
    fencer.locations.saw(switch.id, "10.0.0.1", 1, now=0.0)
    fencer.locations.saw(switch.id, "192.168.1.1", 4, now=0.0)
    return fencer, switch


def test_a_signed_fresh_request_fences_every_port_of_the_node(device):
    fencer, switch = device
    answer = fencer.handle(fencing.signed(SECRET, "fence", "node1", ["10.0.0.1", "192.168.1.1"]))
    assert answer == {"ok": True, "ports": [["0000000000000001", 1], ["0000000000000001", 4]]}
    assert switch.port_mods() == [1, 4]


def test_the_same_request_twice_is_refused_the_second_time(device):
    fencer, switch = device
    request = fencing.signed(SECRET, "unfence", "node1", ["10.0.0.1"])
    assert fencer.handle(request)["ok"]
    again = fencer.handle(dict(request))
    assert not again["ok"] and "replay" in again["error"] and switch.port_mods() == [1]


def test_an_old_request_is_refused(device):
    fencer, switch = device
    request = fencing.signed(SECRET, "unfence", "node1", ["10.0.0.1"])
    answer = fencer.handle(request, now_wall=request["time"] + fencing.WINDOW_S + 1)
    assert not answer["ok"] and "old" in answer["error"] and switch.port_mods() == []


@pytest.mark.parametrize("key", ["action", "node", "addresses", "time", "nonce"])
def test_a_changed_field_breaks_the_signature(device, key):
    fencer, switch = device
    request = fencing.signed(SECRET, "fence", "node1", ["10.0.0.1"])
    request[key] = {"action": "unfence", "node": "node2", "addresses": ["10.0.0.2"], "time": request["time"] + 1,
                    "nonce": "0" * 32}[key]
    answer = fencer.handle(request)
    assert not answer["ok"] and "refused" in answer["error"] and switch.port_mods() == []


@pytest.mark.parametrize("request_", [[], {"action": "fence"}, {"action": "fence", "node": "n", "addresses": [1],
                                                                "time": 1.0, "nonce": "x", "mac": ""}])
def test_a_malformed_request_gets_an_error_reply(device, request_):
    fencer, _switch = device
    answer = fencer.handle(request_)
    assert answer["ok"] is False and answer["error"]


def test_every_address_must_be_located_or_nothing_changes(device):
    fencer, switch = device
    answer = fencer.handle(fencing.signed(SECRET, "fence", "node1", ["10.0.0.1", "10.0.0.9"]))
    assert not answer["ok"] and "10.0.0.9" in answer["error"] and switch.port_mods() == []


def test_a_spoofed_arp_from_another_port_does_not_move_a_known_node(device):
    fencer, switch = device
    fencer.locations.saw(switch.id, "10.0.0.1", 3, now=10.0)  # a third host claims node1's address
    assert fencer.handle(fencing.signed(SECRET, "fence", "node1", ["10.0.0.1"]))["ports"] == [["0000000000000001", 1]]
    fencer.locations.saw(switch.id, "10.0.0.1", 3, now=LOCATION_AGE_S + 1)  # node1 silent for long: it may have moved
    assert fencer.locations.where["10.0.0.1"].port == 3


def test_a_port_going_down_lets_its_node_move_at_once(device):
    fencer, switch = device
    fencer.locations.port_down(switch.id, 1)
    fencer.locations.saw(switch.id, "10.0.0.1", 2, now=1.0)
    assert fencer.locations.where["10.0.0.1"].port == 2


def test_ports_whose_links_the_switch_reported_down_are_fenced_without_waiting_for_a_barrier(device, monkeypatch):
    """A crashed node's ports: the switch already said they carry nothing; they are shut all the same."""
    fencer, switch = device
    monkeypatch.setattr("controller.fencing.CONFIRM_TIMEOUT_S", 0.2)
    switch.answers_barriers = False
    fencer.link_changed(switch.id, 1, down=True)
    fencer.link_changed(switch.id, 4, down=True)
    t = time.monotonic()
    answer = fencer.handle(fencing.signed(SECRET, "fence", "node1", ["10.0.0.1", "192.168.1.1"]))
    assert answer["ok"] and time.monotonic() - t < 0.1
    assert switch.port_mods() == [1, 4] and {(1, 1), (1, 4)} <= fencer.fenced


@pytest.mark.parametrize("reported", [[1], [1, 4, -4]])  # one link down; or the second back up since
def test_a_port_whose_link_may_be_up_waits_for_the_switch_to_confirm(device, monkeypatch, reported):
    fencer, switch = device
    monkeypatch.setattr("controller.fencing.CONFIRM_TIMEOUT_S", 0.2)
    switch.answers_barriers = False
    for port in reported:
        fencer.link_changed(switch.id, abs(port), down=port > 0)
    answer = fencer.handle(fencing.signed(SECRET, "fence", "node1", ["10.0.0.1", "192.168.1.1"]))
    assert answer == {"ok": False, "error": "the switch did not confirm within 0.2 s"}


def test_unfencing_always_waits_for_the_switch_to_confirm(device, monkeypatch):
    fencer, switch = device
    monkeypatch.setattr("controller.fencing.CONFIRM_TIMEOUT_S", 0.2)
    switch.answers_barriers = False
    fencer.link_changed(switch.id, 1, down=True)
    assert not fencer.handle(fencing.signed(SECRET, "unfence", "node1", ["10.0.0.1"]))["ok"]


def test_the_client_gives_up_on_a_server_that_trickles(tmp_path):
    path = tmp_path / "fence.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            for _ in range(50):  # a byte every 0.1 s, never a newline
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.1)

    threading.Thread(target=trickle, daemon=True).start()
    t = time.monotonic()
    answer = fencing.request(path, SECRET, "fence", "node1", ["10.0.0.1"], timeout=0.5)
    assert not answer["ok"] and time.monotonic() - t < 1.5
    server.close()
