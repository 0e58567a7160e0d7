"""Counting the load balancer's connections from Open vSwitch's conntrack listing."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address

import pytest

from controller import conntrack, ids

B1, B2 = ids.BackendKey(0, 1), ids.BackendKey(1, 0)


def line(sport: int, key: ids.BackendKey | None, state: str | None = "ESTABLISHED", proto: str = "tcp") -> str:
    mark = f",mark={key.mark}" if key else ""
    info = f",protoinfo=(state={state})" if state else ""
    return (f"{proto},orig=(src=10.0.0.101,dst=10.0.0.100,sport={sport},dport=7000),"
            f"reply=(src=10.0.0.2,dst=10.0.0.101,sport=7000,dport={sport}),zone={ids.CT_ZONE}{mark}{info}")


def test_open_connections_are_counted_by_their_mark():
    dump = "\n".join([line(1, B1), line(2, B1), line(3, B2, state="SYN_SENT"), line(4, B2, None, "udp")])
    assert conntrack.open_connections(dump) == {B1: 2, B2: 2}


def test_ended_unmarked_and_foreign_connections_are_not_counted():
    dump = "\n".join([line(1, B1, "TIME_WAIT"), line(2, B1, "CLOSED"), line(3, None),
                      line(4, B1).replace(f"mark={B1.mark}", "mark=7"), "", "garbage"])
    assert conntrack.open_connections(dump) == {}


class Appctl:
    """Stands in for subprocess.run: records each ovs-appctl call and answers as told."""

    def __init__(self, returncode: int = 0, stdout: str = "", stderr: str = "", raises: Exception | None = None):
        self.calls: list[list[str]] = []
        self.returncode, self.stdout, self.stderr, self.raises = returncode, stdout, stderr, raises

    def __call__(self, argv, **kwargs):
        self.calls.append(argv)
        assert kwargs == {"capture_output": True, "text": True, "timeout": conntrack.APPCTL_TIMEOUT_S, "check": False}
        if self.raises is not None:
            raise self.raises
        return subprocess.CompletedProcess(argv, self.returncode, self.stdout, self.stderr)


def test_each_operation_names_halabs_zone_and_what_it_acts_on(monkeypatch):
    fake = Appctl(stdout="listing")
    monkeypatch.setattr(conntrack.subprocess, "run", fake)
    zone = f"zone={ids.CT_ZONE}"
    assert conntrack.dump() == "listing"
    conntrack.forget_backend(IPv4Address("10.0.0.2"), 7000, 6)
    conntrack.forget_all()
    conntrack.limit(65536)
    conntrack.unlimit()
    assert fake.calls == [
        ["ovs-appctl", "dpctl/dump-conntrack", zone],
        ["ovs-appctl", "dpctl/flush-conntrack", zone, "", "ct_nw_src=10.0.0.2,ct_nw_proto=6,ct_tp_src=7000"],
        ["ovs-appctl", "dpctl/flush-conntrack", zone],
        ["ovs-appctl", "dpctl/ct-set-limits", f"{zone},limit=65536"],
        ["ovs-appctl", "dpctl/ct-del-limits", zone]]


def test_a_failing_or_missing_ovs_appctl_is_one_conntrack_error_saying_why(monkeypatch):
    monkeypatch.setattr(conntrack.subprocess, "run", Appctl(returncode=2, stderr="no datapath\n" + "x" * 500))
    with pytest.raises(conntrack.ConntrackError, match=r"^ovs-appctl dpctl/dump-conntrack: no datapath\nx+$") as err:
        conntrack.dump()
    assert len(str(err.value)) == len("ovs-appctl dpctl/dump-conntrack: ") + 200
    monkeypatch.setattr(conntrack.subprocess, "run", Appctl(raises=FileNotFoundError("ovs-appctl")))
    with pytest.raises(conntrack.ConntrackError, match=r"^ovs-appctl dpctl/ct-del-limits: ovs-appctl$"):
        conntrack.unlimit()
    monkeypatch.setattr(conntrack.subprocess, "run", Appctl(raises=subprocess.TimeoutExpired("ovs-appctl", 5)))
    with pytest.raises(conntrack.ConntrackError, match="timed out"):
        conntrack.forget_all()
