"""Failover assist: what a backup does with "your master's port went down", the controller's
debounce, the line format both ends share, and the agent's end against a real unix socket."""

import json
import os
import socket
import time
from ipaddress import ip_address

import pytest

from controller.assist import Watchers
from ha import assist
from ha.assist import AssistLink, Watch
from ha.vrrp.fsm import RouterConfig, SendAdvert, State, TakeAddresses, Transition, VirtualRouter
from ha.vrrp.packet import Advert

ME, MASTER, OTHER = ip_address("10.0.0.2"), ip_address("10.0.0.1"), ip_address("10.0.0.9")


def following_backup(priority: int = 100, advert_int: float = 1.0) -> VirtualRouter:
    """A backup that heard MASTER's advert at t=0 and follows it."""
    r = VirtualRouter(RouterConfig(vrid=51, priority=priority, advert_int=advert_int, primary_address=ME))
    r.startup(0.0)
    r.on_advert(0.0, Advert(51, 254, round(advert_int * 100), (ip_address("10.0.0.100"),)), MASTER)
    assert r.followed == MASTER and r.state is State.BACKUP
    return r


def test_a_backup_told_its_master_is_unplugged_takes_over_at_once_and_says_why():
    r = following_backup(priority=100)
    assert r.master_unplugged(1.0, MASTER) == []
    assert r.next_deadline() == 1.0
    actions = r.on_timer(1.0)
    assert actions[:2] == [SendAdvert(100), TakeAddresses()] and r.state is State.MASTER
    assert [a.reason for a in actions if isinstance(a, Transition)] == [
        "the switch saw master 10.0.0.1's port go down (assist)"]


def test_an_advert_after_the_notice_makes_the_takeover_an_ordinary_one_again():
    r = following_backup()
    r.master_unplugged(1.0, MASTER)
    r.on_advert(1.0, Advert(51, 0, 100, ()), MASTER)  # its goodbye, as it happens
    actions = r.on_timer(r.next_deadline())
    assert [a.reason for a in actions if isinstance(a, Transition)] == ["master down timer expired"]


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


def test_of_the_backups_of_a_group_only_the_first_in_line_hears_of_it():
    """As a VRRP election would: the highest priority, then the highest address."""
    w = Watchers()
    w.clients = {
        "low": frozenset({Watch("10.0.0.1", 51, 100, "10.0.0.3")}),
        "high": frozenset({Watch("10.0.0.1", 51, 150, "10.0.0.2")}),
        "tie": frozenset({Watch("10.0.0.1", 52, 100, "10.0.0.10"), Watch("10.0.0.7", 52, 100, "10.0.0.10")}),
        "tie-lower": frozenset({Watch("10.0.0.1", 52, 100, "10.0.0.9")}),
        "idle": frozenset(),
    }
    assert w.notices(["10.0.0.1", "10.0.0.100"]) == [("high", "10.0.0.1", 51), ("tie", "10.0.0.1", 52)]
    assert w.notices(["10.0.0.5"]) == []


def test_lines_round_trip_and_bad_ones_are_refused():
    watches = frozenset({Watch("10.0.0.1", 51, 100, "10.0.0.2"), Watch("10.0.0.1", 0, 200, "192.168.1.2")})
    assert assist.parse_watch(assist.watch_line(watches)) == watches
    assert assist.parse_down(assist.down_line("10.0.0.1", 51)) == ("10.0.0.1", 51)
    good = {"master": "10.0.0.1", "group": 51, "priority": 100, "address": "10.0.0.2"}
    too_many = [{**good, "group": i} for i in range(assist.MAX_WATCH + 1)]
    for bad in ("10.0.0.1", [1], [{**good, "group": 256}], [{**good, "priority": True}],
                [{**good, "master": "fd00::1"}], [{**good, "address": "server2"}], [{**good, "extra": 1}], too_many):
        with pytest.raises(ValueError):
            assist.parse_watch(json.dumps({"watch": bad}).encode())
    for bad in (b"not json", b"\xff", b"[]"):
        with pytest.raises(ValueError):
            assist.parse_watch(bad)
    for bad in (b'{"down": 7, "group": 51}', b'{"down": "10.0.0.1"}'):
        with pytest.raises(ValueError):
            assist.parse_down(bad)
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
    watches = frozenset({Watch("10.0.0.1", 51, 100, "10.0.0.2")})
    link.watch(watches, 0.1)
    assert peer.recv(4096) == assist.watch_line(frozenset()) + assist.watch_line(watches)
    assert link.due() == pytest.approx(0.1 + assist.REFRESH_S)
    second = assist.down_line("10.0.0.3", 51)
    peer.sendall(assist.down_line("10.0.0.1", 51) + second[:9])
    time.sleep(0.05)
    assert link.read() == [("10.0.0.1", 51)]
    peer.sendall(second[9:])
    time.sleep(0.05)
    assert link.read() == [("10.0.0.3", 51)]
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
    peer.sendall(assist.down_line("10.0.0.1", 51) + b'{"down": 7}\n' + assist.down_line("10.0.0.3", 51))
    time.sleep(0.05)
    assert link.read() == [("10.0.0.1", 51)] and not link.connected, "what came before the garbage still counts"
    peer.close()
