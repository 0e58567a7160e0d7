"""Failover assist: what a backup does with "your master's port went down", the controller's
debounce, the line format both ends share, and the agent's end against a real unix socket."""

import os
import socket
import time
from ipaddress import ip_address

import pytest

from controller.assist import Watchers
from ha import assist
from ha.assist import AssistLink
from ha.vrrp.fsm import ASSIST_SKEW_INTERVAL_S, RouterConfig, SendAdvert, State, TakeAddresses, VirtualRouter
from ha.vrrp.packet import Advert

ME, MASTER, OTHER = ip_address("10.0.0.2"), ip_address("10.0.0.1"), ip_address("10.0.0.9")


def following_backup(priority: int = 100, advert_int: float = 1.0) -> VirtualRouter:
    """A backup that heard MASTER's advert at t=0 and follows it."""
    r = VirtualRouter(RouterConfig(vrid=51, priority=priority, advert_int=advert_int, primary_address=ME))
    r.startup(0.0)
    r.on_advert(0.0, Advert(51, 254, round(advert_int * 100), (ip_address("10.0.0.100"),)), MASTER)
    assert r.followed == MASTER and r.state is State.BACKUP
    return r


def test_a_backup_told_its_master_is_unplugged_takes_over_a_short_skew_later():
    r = following_backup(priority=100)
    assert r.master_unplugged(1.0, MASTER) == []
    skew = 156 * ASSIST_SKEW_INTERVAL_S / 256
    assert r.next_deadline() == pytest.approx(1.0 + skew)
    assert r.on_timer(1.0 + skew / 2) == []
    actions = r.on_timer(1.0 + skew)
    assert actions[:2] == [SendAdvert(100), TakeAddresses()] and r.state is State.MASTER


def test_the_higher_backup_goes_first():
    high, low = following_backup(priority=250), following_backup(priority=100)
    high.master_unplugged(1.0, MASTER)
    low.master_unplugged(1.0, MASTER)
    assert high.next_deadline() < low.next_deadline() <= 1.0 + ASSIST_SKEW_INTERVAL_S


@pytest.mark.parametrize("case", ["another address", "not followed", "master", "fault"])
def test_a_notice_about_anyone_else_or_in_another_state_changes_nothing(case):
    r = following_backup()
    if case == "not followed":
        r.on_advert(0.5, Advert(51, 0, 100, ()), MASTER)  # it said goodbye: nobody is followed
    elif case == "master":
        r.on_timer(10.0)
    elif case == "fault":
        r.fault(0.5, "link down")
    before = (r.state, r.next_deadline(), r.followed)
    assert r.master_unplugged(1.0, OTHER if case == "another address" else MASTER) == []
    assert (r.state, r.next_deadline(), r.followed) == before


def test_a_notice_never_delays_a_takeover_already_due():
    r = following_backup(advert_int=0.01)
    due = r.next_deadline()
    r.master_unplugged(due - 0.0001, MASTER)
    assert r.next_deadline() == pytest.approx(due)


def test_a_port_back_up_before_the_debounce_ends_tells_nobody():
    w = Watchers()
    token = w.port_down((1, 1))
    w.port_up((1, 1))
    assert not w.still_down((1, 1), token)
    first = w.port_down((1, 1))
    w.port_up((1, 1))
    second = w.port_down((1, 1))  # a flap: only the last going-down may still be told
    assert not w.still_down((1, 1), first) and w.still_down((1, 1), second)
    assert w.still_down((1, 1), second) and not w.still_down((1, 2), second)


def test_only_clients_watching_an_address_hear_of_it():
    w = Watchers()
    w.clients = {"a": frozenset({"10.0.0.1"}), "b": frozenset({"10.0.0.3"}), "c": frozenset()}
    assert w.notices(["10.0.0.1", "10.0.0.100"]) == [("a", "10.0.0.1")]


def test_lines_round_trip_and_bad_ones_are_refused():
    assert assist.parse_watch(assist.watch_line(frozenset({"10.0.0.1"}))) == {"10.0.0.1"}
    assert assist.parse_down(assist.down_line("10.0.0.1")) == "10.0.0.1"
    too_many = [f"10.0.{i // 256}.{i % 256}" for i in range(assist.MAX_WATCH + 1)]
    for bad in (b"[]", b'{"watch": "10.0.0.1"}', b'{"watch": [1]}', b"not json", b"\xff",
                assist.watch_line(frozenset(too_many))):
        with pytest.raises(ValueError):
            assist.parse_watch(bad)
    with pytest.raises(ValueError):
        assist.parse_down(b'{"down": 7}')
    assert assist.split_lines(b'{"a": 1}\n{"b"') == ([b'{"a": 1}'], b'{"b"')
    with pytest.raises(ValueError):
        assist.split_lines(b"x" * (assist.MAX_LINE + 1))


@pytest.fixture
def server(tmp_path):
    path = tmp_path / "assist.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen()
    listener.settimeout(2)
    yield path, listener
    listener.close()


def test_the_agent_names_its_masters_and_hears_their_ports_go_down(server):
    path, listener = server
    link = AssistLink(path)
    assert link.step(0.0) and link.connected
    peer, _ = listener.accept()
    peer.settimeout(2)
    link.watch(frozenset({"10.0.0.1"}), 0.1)
    assert peer.recv(4096) == assist.watch_line(frozenset()) + assist.watch_line(frozenset({"10.0.0.1"}))
    assert link.due() == pytest.approx(0.1 + assist.REFRESH_S)
    second = assist.down_line("10.0.0.3")
    peer.sendall(assist.down_line("10.0.0.1") + second[:9])
    time.sleep(0.05)
    assert link.read() == ["10.0.0.1"]
    peer.sendall(second[9:])
    time.sleep(0.05)
    assert link.read() == ["10.0.0.3"]
    peer.close()
    time.sleep(0.05)
    assert link.read() == [] and not link.connected
    assert link.due() == pytest.approx(assist.RETRY_S), "it tries again a second after it last connected"


def test_the_agent_trusts_no_socket_others_may_open(server):
    path, _listener = server
    os.chmod(path, 0o666)
    link = AssistLink(path)
    assert not link.step(0.0) and not link.connected
    os.chmod(path, 0o600)
    assert not link.step(0.5), "not before RETRY_S"
    assert link.step(assist.RETRY_S)


def test_garbage_from_the_controller_drops_the_connection(server):
    path, listener = server
    link = AssistLink(path)
    link.step(0.0)
    peer, _ = listener.accept()
    peer.sendall(b'{"down": 7}\n')
    time.sleep(0.05)
    assert link.read() == [] and not link.connected
    peer.close()
