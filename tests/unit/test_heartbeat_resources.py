"""The resources the active node owns: nothing half-started is forgotten, every stop is tried.
The network is faked (no root); the services are real commands."""

from ipaddress import IPv4Interface

import pytest

from ha import announce, netlink
from ha.heartbeat import resources
from ha.heartbeat.config import Resource
from ha.heartbeat.resources import Resources

VIP = Resource("vip", "vip", address=IPv4Interface("10.0.0.100/24"), interface="eth0")


@pytest.fixture
def host(monkeypatch):
    """A fake interface eth0 whose addresses the fakes keep."""
    held: set[str] = set()
    monkeypatch.setattr(netlink, "link", lambda name: netlink.Link(7, name, b"\2" * 6, True))
    monkeypatch.setattr(netlink, "add_addresses", lambda index, addrs: held.update(str(a) for a in addrs))
    monkeypatch.setattr(netlink, "remove_addresses", lambda index, addrs: held.difference_update(str(a) for a in addrs))
    return held


def service(name: str, start: str = "true", stop: str = "true") -> Resource:
    return Resource(name, "service", start=("sh", "-c", start), stop=("sh", "-c", stop), monitor=("true",))


def test_a_vip_whose_announcement_fails_is_still_removed(host, monkeypatch):
    def no_garp(*_args, **_kw):
        raise OSError("Network is down")

    monkeypatch.setattr(announce.Announcer, "announce", no_garp)
    r = Resources((VIP,))
    error = r.start()
    assert error is not None and "Network is down" in error
    assert host == set() and r.running == []  # added, then taken away again: never left behind


def test_every_resource_is_stopped_even_when_one_stop_fails(host, monkeypatch, tmp_path):
    monkeypatch.setattr(announce.Announcer, "announce", lambda *a, **k: None)
    marker = tmp_path / "web-stopped"
    r = Resources((VIP, service("web", stop=f"touch {marker}"), service("db", stop="exit 3")))
    assert r.start() is None and str(VIP.address) in host
    errors = r.stop()
    assert len(errors) == 1 and errors[0].startswith("db:")
    assert marker.exists() and host == set() and r.running == []


def test_a_failed_start_stops_what_started_before_it(host, monkeypatch, tmp_path):
    monkeypatch.setattr(announce.Announcer, "announce", lambda *a, **k: None)
    marker = tmp_path / "web-stopped"
    r = Resources((VIP, service("web", stop=f"touch {marker}"), service("db", start="exit 1")))
    assert r.start().startswith("db:")
    assert marker.exists() and host == set()


def test_at_start_a_vip_and_a_running_service_left_by_a_killed_life_are_stopped(host, tmp_path):
    host.add(str(VIP.address))  # the earlier life was SIGKILLed while active
    running, idle = tmp_path / "running-stopped", tmp_path / "idle-stopped"
    web = Resource("web", "service", start=("true",), stop=("touch", str(running)), monitor=("true",))
    db = Resource("db", "service", start=("true",), stop=("touch", str(idle)), monitor=("false",))
    assert Resources((VIP, web, db)).stop_leftovers() == []
    assert host == set() and running.exists() and not idle.exists()


def test_a_command_that_hangs_is_cut_off(monkeypatch):
    monkeypatch.setattr(resources, "COMMAND_TIMEOUT_S", 0.2)
    assert "timed out" in resources.run_command(("sleep", "5"))
