"""The VRRP agent tells its sockets and the controller whom its backups follow only when that
changes (once per wake-up it compares; 64 instances took 9 % of a core rebuilding it)."""

from __future__ import annotations

from ipaddress import IPv4Address
from types import SimpleNamespace

from ha.assist import Watch
from ha.vrrp.agent import Agent, OnTransport
from ha.vrrp.fsm import RouterConfig, State, VirtualRouter


class Recorder:
    def __init__(self) -> None:
        self.calls: list = []

    def follow(self, masters: frozenset) -> None:
        self.calls.append(masters)

    def watch(self, watches: frozenset, _now: float) -> None:
        self.calls.append(watches)


def agent_with_one_backup() -> tuple[Agent, VirtualRouter, Recorder, Recorder]:
    router = VirtualRouter(RouterConfig(51, 100, 0.1, IPv4Address("10.0.0.2")))
    router.state, router.followed = State.BACKUP, IPv4Address("10.0.0.1")
    sock, controller = Recorder(), Recorder()
    agent = Agent.__new__(Agent)  # its loop's state only: no sockets, no netlink
    inst = SimpleNamespace(router=router, transport=sock, source=IPv4Address("10.0.0.2"),
                           cfg=SimpleNamespace(assist=True, virtual_router_id=51))
    agent.instances = [inst]
    agent.on_transport = {("eth0", 4): OnTransport(sock, [inst], {inst.source}, {51: inst})}
    agent.assist, agent._following = controller, []
    return agent, router, sock, controller


def test_nothing_is_said_again_while_nothing_changes():
    agent, _router, sock, controller = agent_with_one_backup()
    agent._follow_masters()
    agent._follow_masters()
    assert sock.calls == [frozenset({IPv4Address("10.0.0.1")})]
    assert controller.calls == [frozenset({Watch("10.0.0.1", 51, 100, "10.0.0.2")})]


def test_a_new_master_a_new_priority_or_a_new_state_is_said_at_once():
    agent, router, sock, controller = agent_with_one_backup()
    agent._follow_masters()
    router.followed = IPv4Address("10.0.0.3")
    agent._follow_masters()
    assert sock.calls[-1] == frozenset({IPv4Address("10.0.0.3")})
    router.set_priority(0.0, 90)  # tracking lowered it: the controller must tell the right backup
    agent._follow_masters()
    assert controller.calls[-1] == frozenset({Watch("10.0.0.3", 51, 90, "10.0.0.2")})
    router.state = State.MASTER
    agent._follow_masters()
    assert sock.calls[-1] == frozenset() and controller.calls[-1] == frozenset()
    assert len(sock.calls) == len(controller.calls) == 4
