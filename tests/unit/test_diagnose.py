"""`halab diagnose`'s rules, over facts written by hand (tests/lab/test_diagnose.py reads them from
a lab that was set up wrong)."""

import json
import os

import pytest

from harness import diagnose

VIP = "10.0.0.100"


def instance(host, **changes):
    base = {"host": host, "program": "halab-vrrp", "running": True, "name": "VI_1", "vrid": 51,
            "priority": 200 if host == "server1" else 100, "advert_int": 1.0, "preempt": True,
            "checksum_with_pseudo_header": True, "vips": [VIP], "state": "MASTER" if host == "server1" else "BACKUP",
            "drops": {}, "failed": []}
    return {**base, **changes}


def facts(*instances, **more):
    return {"vip": VIP, "vrrp": list(instances), "arp": {"client1": "server1"}, **more}


def problems(f):
    return [x.problem for x in diagnose.findings(f)]


def test_a_healthy_pair_has_nothing_wrong_and_says_what_it_saw():
    f = facts(instance("server1"), instance("server2"))
    assert diagnose.findings(f) == []
    assert diagnose.text(f) == "Nothing wrong found: server1 MASTER, server2 BACKUP."


def test_a_vrid_mismatch_makes_two_masters_and_is_named():
    f = facts(instance("server1"), instance("server2", vrid=52, state="MASTER", drops={"unknown_vrid": 7}))
    assert problems(f) == [
        "2 VRRP masters of 10.0.0.100: server1, server2 (split brain).",
        "server1 and server2 use different virtual_router_id (51 and 52).",
        "server2 dropped 7 packet(s): unknown_vrid.",
    ]
    assert "VRID mismatch" in diagnose.findings(f)[2].why


def test_settings_that_cannot_agree_are_each_named():
    f = facts(instance("server1", advert_int=0.5, checksum_with_pseudo_header=False), instance("server2", priority=200))
    said = problems(f)
    assert "server1 and server2 use different advert_int (0.5 s and 1 s)." in said
    assert "server1 and server2 compute the advert checksum differently." in said
    assert "server1 and server2 have the same priority (200)." in said


def test_nobody_master_a_failing_check_a_stopped_agent_and_preempt_off():
    f = facts(instance("server1", state="FAULT", failed=["chk_haproxy"], preempt=False),
              instance("server2", running=False, state="BACKUP"))
    said = problems(f)
    assert said[0] == "No VRRP agent is master of 10.0.0.100."
    assert "Every agent is server1 FAULT, server2 BACKUP." in diagnose.findings(f)[0].why
    assert "server1's check chk_haproxy fails." in said and "server2's halab-vrrp does not run." in said
    assert not any("preempt" in x for x in said)  # in FAULT it could not take the VIP back anyway
    back = facts(instance("server1", state="BACKUP", preempt=False), instance("server2", state="MASTER"))
    assert "preempt is off on server1 (priority 200), which is not master." in problems(back)


def test_a_client_whose_arp_entry_points_at_the_old_master():
    f = facts(instance("server1", state="BACKUP"), instance("server2", state="MASTER"))
    assert problems(f) == ["client1's ARP entry for 10.0.0.100 points at server1, not at the master server2."]
    assert problems({**f, "arp": {"client1": None}}) == []
    assert problems({**f, "vip": "10.0.0.200"}) == []  # an address nobody serves: nothing to say about it


def test_unknown_counters_and_keepalived_without_counters():
    f = facts(instance("server1", drops={"something_new": 1, "bad_ttl": 0}), instance("server2", drops=None))
    assert problems(f) == ["server1 dropped 1 packet(s): something_new."]
    assert diagnose.findings(f)[0].why == "see the agent's log."


def test_heartbeat_nodes_without_quorum_failing_to_fence_or_both_active():
    node = {"host": "node1", "running": True, "role": "ACTIVE", "reason": "started"}
    assert diagnose.findings({"heartbeat": [node, {**node, "host": "node2", "role": "STANDBY"}]}) == []
    both = problems({"heartbeat": [node, {**node, "host": "node2"}]})
    assert both == ["Two heartbeat nodes are active: node1, node2."]
    quorum = "node2 is silent but the tie-breaker does not answer: no quorum, no takeover"  # the agent's words
    stuck = problems({"heartbeat": [
        {**node, "role": "STANDBY", "reason": quorum},
        {**node, "host": "node2", "role": "STANDBY", "reason": "fencing node1 failed (timeout); not taking over"}]})
    assert stuck == ["No heartbeat node is active.", f"node1 has no quorum: {quorum}.",
                     "node2 could not fence its peer: fencing node1 failed (timeout); not taking over."]
    assert problems({"heartbeat": [node, {**node, "host": "node2", "role": "FAULT", "reason": "monitor failed"}]}) == [
        "node2 is in FAULT: monitor failed."]
    assert problems({"heartbeat": [node, {**node, "host": "node2", "running": False, "role": "STANDBY"}]}) == [
        "node2's halab-heartbeat does not run."]


def test_backends_out_of_the_pool_and_why():
    up = {"name": "backend1 (probe)", "health": "up", "reason": "", "link": "up", "drained": False, "in_pool": True}
    f = {"backends": [up, {**up, "name": "b2", "link": "down", "in_pool": False},
                      {**up, "name": "b3", "drained": True, "in_pool": False},
                      {**up, "name": "b4", "health": "down", "reason": "connection refused", "in_pool": False},
                      {**up, "name": "b5", "in_pool": False},
                      {**up, "name": "b6", "health": "down", "reason": "check failed", "in_pool": False}]}
    assert problems(f) == ["b2 is out of the balancer's pool: its link is down.",
                           "b3 is out of the balancer's pool: it is drained.",
                           "b4 is out of the balancer's pool: its health check fails (connection refused).",
                           "b5 is out of the balancer's pool: it has not passed enough health checks yet.",
                           "b6 is out of the balancer's pool: its health check fails."]
    assert diagnose.summary({"backends": [up]}) == "1 of 1 backends in the pool"
    assert diagnose.text({}) == "Nothing wrong found: this lab has no VRRP, heartbeat or balancer to diagnose."


def node(host, running=True, role="ACTIVE", reason="x"):
    return {"host": host, "running": running, "role": role, "reason": reason}


#: The whole text of every kind of finding: the words a student reads are part of the behaviour.
WORDS = [
    (facts(instance("server1"), instance("server2", vrid=52, state="MASTER")),
     '- 2 VRRP masters of 10.0.0.100: server1, server2 (split brain).\n'
     "  Each believes the other is gone: they do not receive each other's adverts. See the findings "
     "below, or look for a partition or a cut link.\n"
     '- server1 and server2 use different virtual_router_id (51 and 52).\n'
     "  Each drops the other's adverts as another router's, so both become master."),
    (facts(instance("server1", advert_int=0.5, checksum_with_pseudo_header=False), instance("server2", priority=200)),
     '- server1 and server2 use different advert_int (0.5 s and 1 s).\n'
     '  A VRRPv3 backup times the master out by the interval in its adverts, so the failover time depends on '
     'who is master (keepalived counts each such advert); give both the same.\n'
     '- server1 and server2 compute the advert checksum differently.\n'
     "  One includes the IP pseudo-header (VRRPv3), the other not (VRRPv2): a peer that accepts only its own "
     "form (keepalived) drops the other's adverts as bad checksums (halab's agent accepts both).\n"
     '- server1 and server2 have the same priority (200).\n'
     '  The tie goes to the higher primary IP address, not to the server you meant.'),
    (facts(instance("server1", state="FAULT", failed=["chk"]), instance("server2", running=False, state=None)),
     '- No VRRP agent is master of 10.0.0.100.\n'
     '  Nobody answers for the VIP. Every agent is server1 FAULT, server2 starting.\n'
     "- server1's check chk fails.\n"
     '  The instance is in FAULT (or lowered in priority) while it fails.\n'
     "- server2's halab-vrrp does not run.\n"
     '  `fault restore` starts it again.'),
    (facts(instance("server1", state="BACKUP", preempt=False), instance("server2", state="MASTER")),
     '- preempt is off on server1 (priority 200), which is not master.\n'
     '  A higher priority that comes back stays backup until the master fails.\n'
     "- client1's ARP entry for 10.0.0.100 points at server1, not at the master server2.\n"
     "  The new master's gratuitous ARP did not reach it, or was ignored: its requests go to the old "
     "master until the entry expires."),
    ({"heartbeat": [node("node1", role=None, reason=None), node("node2", running=False, role="STANDBY", reason=None)]},
     '- No heartbeat node is active.\n'
     '  node1: starting (no reason yet); node2: STANDBY (no reason yet).\n'
     "- node2's halab-heartbeat does not run.\n"
     '  `fault restore` starts it again.'),
    ({"heartbeat": [node("node1"), node("node2")]},
     '- Two heartbeat nodes are active: node1, node2.\n'
     '  After a healed partition the one outranked releases; if it lasts, they do not hear each '
     'other (a node fenced by the switch cannot).'),
    ({"heartbeat": [node("node1"), node("node2", role="STANDBY", reason="no quorum, no takeover"),
                    node("node3", role="STANDBY", reason="fencing node1 failed (t)"),
                    node("node4", role="FAULT", reason="monitor")]},
     '- node2 has no quorum: no quorum, no takeover.\n'
     '  The tie-breaker does not answer it either, so it may be the one cut off: it does not take '
     'over (a partition, or the tie-breaker is down).\n'
     '- node3 could not fence its peer: fencing node1 failed (t).\n'
     "  Without the switch's confirmation that the peer is isolated it does not take over (the "
     "controller does not answer, or does not know the peer's port).\n"
     '- node4 is in FAULT: monitor.\n'
     "  A resource's monitor failed, or a VIP's interface is down: it gives everything up until that "
     "has been fine for failure_timeout."),
    ({"backends": [{"name": "b1", "health": "down", "reason": "", "link": "up", "drained": False, "in_pool": False}]},
     "- b1 is out of the balancer's pool: its health check fails.\n"
     '  New connections go to the other backends; it comes back once it is healthy.'),
]


@pytest.mark.parametrize(("f", "said"), WORDS)
def test_the_words_of_every_finding(f, said):
    assert diagnose.text(f) == said


def test_the_summary_names_heartbeat_roles_and_the_pool():
    assert diagnose.summary({"heartbeat": [node("node1")], "backends": [{"in_pool": True}, {"in_pool": False}]}) == (
        "node1 ACTIVE, 1 of 2 backends in the pool")


SHOW_STAT = (  # what HAProxy 2.6 answers `show stat` with (columns cut to those read, in its order)
    "# pxname,svname,status,check_status,check_desc,last_chk\n"
    "probe,FRONTEND,OPEN,,,\n"
    "probe,web1,DOWN,L4CON,Layer4 connection problem,Connection refused\n"
    "probe,web2,UP,L4OK,Layer4 check passed,\n"
    "probe,web3,MAINT (via probe/web9),,,\n"
    "probe,web4,DOWN 1/2,L4OK,Layer4 check passed,\n"
    "probe,web5,UP 1/3,L4TOUT,Layer4 timeout,\n"
    "probe,web6,no check,,,\n"
    "probe,web7\n"
    "probe,BACKEND,UP,,,\n")


def test_an_haproxys_pool_is_read_from_its_runtime_api_and_a_server_out_of_it_is_named(tmp_path, monkeypatch):
    import socketserver
    import threading
    from types import SimpleNamespace

    from harness.daemons.haproxy import HAProxy, render_haproxy
    from topologies import ReferenceTopo

    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path))
    haproxy = HAProxy(SimpleNamespace(state=SimpleNamespace(run_id="r1"), run_dir=tmp_path,
                                     server_of=lambda _host: "localhost"), "lb1", "10.0.0.100", {})
    assert haproxy.stats_socket == tmp_path / "haproxy-r1-lb1.sock"
    assert f"    stats socket {haproxy.stats_socket} mode 600 level user\n" in render_haproxy(
        ReferenceTopo(), "10.0.0.100", {"probe": (80, "roundrobin")}, 0.1, 3, 2, "web", haproxy.stats_socket)
    asked = []

    replies = [SHOW_STAT, "Unknown command, but maybe one of the following ones is a better match:\n"]

    class Stats(socketserver.StreamRequestHandler):
        def handle(self):
            asked.append(self.rfile.readline())
            self.wfile.write(replies.pop(0).encode())

    with socketserver.UnixStreamServer(str(haproxy.stats_socket), Stats) as server:
        threading.Thread(target=lambda: [server.handle_request() for _ in range(2)], daemon=True).start()
        servers = haproxy.servers()
        assert haproxy.servers() == []  # not a `show stat` table: nothing to say
    assert asked == [b"show stat\n"] * 2
    assert [(x["server"], x["in_pool"], x["health"], x["drained"]) for x in servers] == [
        ("web1", False, "down", False), ("web2", True, "up", False), ("web3", False, "up", True),
        ("web4", False, "up", False),   # coming back: its checks pass, not yet enough of them
        ("web5", True, "up", False),    # going down: still taking connections
        ("web6", True, "up", False)]    # never checked: always used; web7's row was cut short
    assert servers[0] == {"listener": "probe", "server": "web1", "status": "DOWN", "in_pool": False, "health": "down",
                          "drained": False, "words": "Layer4 connection problem: Connection refused"}
    found = problems({"vip": VIP, "vrrp": [], "backends": [
        {"name": f"{x['server']} (HAProxy on lb1)", "health": x["health"], "reason": x["words"], "link": "up",
         "drained": x["drained"], "in_pool": x["in_pool"]} for x in servers]})
    assert found == ["web1 (HAProxy on lb1) is out of the balancer's pool: its health check fails "
                     "(Layer4 connection problem: Connection refused).",
                     "web3 (HAProxy on lb1) is out of the balancer's pool: it is drained.",
                     "web4 (HAProxy on lb1) is out of the balancer's pool: it has not passed enough health checks "
                     "yet."]


def test_keepalived_counters_are_named_as_halabs_agent_names_the_same_drops_and_each_is_explained():
    from harness.labfacts import KEEPALIVED_DROPS, keepalived_drops

    stats = {"advert_rcvd": 40, "advert_sent": 0, "ip_ttl_err": 2, "addr_list_err": 7, "authtype_mismatch": 1,
             "auth_failure": 3, "advert_interval_err": 0}
    assert {k: v for k, v in keepalived_drops(stats).items() if v} == {"bad_ttl": 2, "address_list": 7, "auth": 4}
    assert set(KEEPALIVED_DROPS.values()) <= set(diagnose.DROPS)
    f = facts(instance("server1", program="keepalived"),
              instance("server2", program="keepalived", state="MASTER", drops=keepalived_drops(stats)))
    assert problems(f)[1:] == ["server2 dropped 7 packet(s): address_list.", "server2 dropped 4 packet(s): auth.",
                               "server2 dropped 2 packet(s): bad_ttl."]


def test_keepalived_counters_come_from_its_json_dump_which_is_removed_and_any_failure_gives_none(tmp_path,
                                                                                                  monkeypatch):
    from types import SimpleNamespace

    from harness.daemons import vrrp

    monkeypatch.setattr(vrrp, "_json_signal", lambda: 36)
    daemon = object.__new__(vrrp.Keepalived)
    daemon.lab, daemon.host, daemon.tag = SimpleNamespace(run_dir=tmp_path), "server2", ""
    dump = daemon.dump_dir / "keepalived.json"
    daemon.dump_dir.mkdir()
    said = []

    class Keepalived:  # writes what keepalived 2.2 writes on the signal
        pid = os.getpid()

        def alive(self):
            return True

        def frozen(self):
            return False

        def signal(self, sig):
            said.append(sig)
            if self.answer is not None:
                dump.write_text(self.answer)

    daemon.process = Keepalived()
    daemon.process.answer = json.dumps([{"data": {"iname": "VI_1", "vrid": 51},
                                         "stats": {"advert_rcvd": 9, "addr_list_err": 4}}])
    assert daemon.counters() == {"VI_1": {"advert_rcvd": 9, "addr_list_err": 4}}
    assert said == [36] and not dump.exists()  # its whole state, passwords too: not left lying
    for answer in (None, '[{"stats": {}}]', "[{"):
        daemon.process.answer = answer
        assert daemon.counters(timeout=0.1) == {}
    daemon.process.signal = lambda sig: (_ for _ in ()).throw(ProcessLookupError())
    assert daemon.counters(timeout=0.1) == {}
