"""Counting the load balancer's connections from Open vSwitch's conntrack listing."""

from __future__ import annotations

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
