"""halab's VRRP agent on real Mininet hosts: election, failover, interop with keepalived, and
adverts it must ignore (sent with scapy, the independent implementation)."""

import bisect
import json
import sys
import time
from ipaddress import IPv4Interface

import pytest

from harness.daemons import HalabVrrp, Keepalived
from harness.daemons.vrrp import instance
from harness.faults import Faults
from harness.lab import Lab
from harness.scenarios import active_standby
from tests.lab.helpers import answers, start_responders, wait_until
from topologies import ActiveStandbyTopo

pytestmark = pytest.mark.mininet
VIP = "10.0.0.100"
VRRP = [sys.executable, "-m", "ha.vrrp"]
SPOOF = """
import sys
from scapy.all import IP, VRRPv3, Raw, send
vip, kind = "10.0.0.100", sys.argv[1]
def adv(**kw):
    return VRRPv3(**{"vrid": 51, "priority": 255, "adv": 10, "addrlist": [vip], **kw})
base = IP(src="10.0.0.101", dst="224.0.0.18", ttl=255, proto=112)
pkt = {
    "ttl254": IP(src="10.0.0.101", dst="224.0.0.18", ttl=254, proto=112) / adv(),
    "checksum": base / adv(chksum=0x1234),
    "truncated": base / Raw(bytes(base / adv())[20:26]),
    "vrid": base / adv(vrid=52),
    "version": base / Raw(b"\\x21" + bytes(base / adv())[21:]),
}[kind]
send(pkt, iface="client1-eth0", count=3, inter=0.02, verbose=False)
"""


def vrrp(lab: Lab, host: str, priority: int, advert_int: float = 0.1, **more) -> HalabVrrp:
    """halab's agent on `host`, started and ready."""
    return HalabVrrp(lab, host, instance(lab.topo, host, priority, advert_int, **more)).start()


def masters(daemons) -> list[str]:
    """Hosts whose agent holds an instance as MASTER now (one entry per instance)."""
    return [d.host for d in daemons for _instance in d.masters()]


def transitions_since(daemons, since: float) -> list:
    """State changes any of `daemons` logged after `since` (monotonic): a flip and a flip back
    inside a quiet period shows here even when the state at its end looks unchanged."""
    return [e for d in daemons for e in d.events() if e.at > since]


@pytest.fixture
def lab(tmp_path):
    with Lab(ActiveStandbyTopo(), tmp_path) as lab:
        start_responders(lab, ["server1", "server2"])
        yield lab


@pytest.mark.parametrize(("prio1", "prio2", "winner"), [(200, 100, "server1"), (100, 200, "server2")])
def test_election_higher_priority_wins(lab, prio1, prio2, winner):
    daemons = [vrrp(lab, "server1", prio1),
               vrrp(lab, "server2", prio2)]
    assert wait_until(lambda: masters(daemons) == [winner], timeout=10), [d.events() for d in daemons]
    assert wait_until(lambda: answers(lab, "client1", [VIP]) == {VIP: winner}, timeout=5)
    settled = time.monotonic()
    time.sleep(1)  # stable: no state change at all for a second
    assert masters(daemons) == [winner] and not transitions_since(daemons, settled)


@pytest.mark.parametrize("first", ["loser", "winner", "both"])
@pytest.mark.parametrize(("prio1", "winner"), [(100, "server2"), (150, "server1")])
def test_split_brain_heals_to_one_master_and_every_client_follows_it(lab, prio1, winner, first):
    """Partitioned, both become master; healed, the better one stays (priority, then the higher
    address) and the client's ARP cache ends up on it, not on the one that yielded.

    A partition heals one way first as often as not: `first` hears the other side 150 ms (1.5
    adverts) before the other side hears it. When the loser hears first, it yields at once, and
    the winner only learns of the split brain from the adverts the loser keeps sending after."""
    daemons = [vrrp(lab, "server1", prio1),
               vrrp(lab, "server2", 100)]
    faults = Faults(lab)
    faults.partition(["server1"], ["server2"])
    assert wait_until(lambda: sorted(masters(daemons)) == ["server1", "server2"], timeout=10)
    loser = "server2" if winner == "server1" else "server1"
    # The worst case for the heal: the client's ARP entry for the VIP points at the one that will
    # yield. A gratuitous ARP only updates an existing entry, and only one older than neigh
    # locktime (1 s): hence the first query and the pauses.
    answers(lab, "client1", [VIP])
    garp = [sys.executable, "-c", "from ha import announce, netlink; from ipaddress import ip_address; "
            f"link = netlink.link('{loser}-eth0'); "
            f"announce.send_gratuitous_arps(link.name, link.mac, [ip_address('{VIP}')])"]
    assert wait_until(lambda: lab.run(loser, garp) and arp_of_vip(lab) == lab.host(loser).MAC(), timeout=10,
                      interval=1.1)
    time.sleep(1.1)
    if first != "both":
        faults.heal([loser if first == "loser" else winner])
        time.sleep(0.15)
    faults.heal()
    assert wait_until(lambda: masters(daemons) == [winner], timeout=5), [d.events() for d in daemons]
    assert wait_until(lambda: arp_of_vip(lab) == lab.host(winner).MAC(), timeout=2)
    assert answers(lab, "client1", [VIP]) == {VIP: winner}


def arp_of_vip(lab) -> str | None:
    """The MAC address client1's ARP cache holds for the VIP."""
    words = lab.run("client1", ["ip", "neigh", "show", VIP]).stdout.split()
    return words[words.index("lladdr") + 1] if "lladdr" in words else None

def test_interop_halab_and_keepalived_fail_over_to_each_other(lab):
    """halab master + keepalived backup in one VRID; then the other way round after a restart."""
    ours = vrrp(lab, "server1", 200)
    theirs = Keepalived(lab, "server2", instance(lab.topo, "server2", 100, 0.1)).start()
    assert wait_until(lambda: masters([ours, theirs]) == ["server1"], timeout=10)
    settled = time.monotonic()
    time.sleep(1)  # keepalived must stay backup: it hears and accepts our adverts
    assert masters([ours, theirs]) == ["server1"] and not transitions_since([ours, theirs], settled)
    ours.stop()  # SIGTERM: priority 0, keepalived takes over after Skew_Time
    assert wait_until(lambda: masters([theirs]) == ["server2"], timeout=3)
    assert wait_until(lambda: answers(lab, "client1", [VIP]) == {VIP: "server2"}, timeout=5)
    ours = vrrp(lab, "server1", 50)
    settled = time.monotonic()
    time.sleep(1)
    assert masters([ours, theirs]) == ["server2"]  # our backup accepts keepalived's adverts
    assert [e.state for e in ours.events()] == ["BACKUP"] and not transitions_since([theirs], settled)
    theirs.stop()
    assert wait_until(lambda: masters([ours]) == ["server1"], timeout=3)
    assert wait_until(lambda: answers(lab, "client1", [VIP]) == {VIP: "server1"}, timeout=5)


def test_status_shows_the_live_agent(lab):
    vrrp(lab, "server1", 200)
    assert wait_until(lambda: "MASTER" in lab.run("server1", [*VRRP, "status"]).stdout, timeout=10)
    elsewhere = lab.run("server2", [*VRRP, "status"])
    assert elsewhere.returncode == 1 and "no agent is running" in elsewhere.stderr
    assert json.loads(lab.run("server2", [*VRRP, "status", "--json"]).stdout) == []


def test_bad_config_fails_at_start_naming_the_key(lab):
    conf = lab.run_dir / "bad.toml"
    conf.write_text('[[vrrp_instance]]\nname = "X"\ninterface = "server1-eth0"\nvirtual_router_id = 300\n'
                    'virtual_ipaddress = ["10.0.0.100/24"]\n')
    result = lab.run("server1", [*VRRP, "--config", str(conf)])
    assert result.returncode == 2
    assert "virtual_router_id = 300" in result.stderr and "1 to 255" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stdout + result.stderr


def _drops(agent: HalabVrrp) -> dict:
    return agent.status()[0]["drops"]


def test_malformed_and_spoofed_adverts_change_nothing(lab):
    """A stranger's priority-255 adverts that fail a receive check must not move the master."""
    daemons = [vrrp(lab, "server1", 200, 0.2),
               vrrp(lab, "server2", 100, 0.2)]
    assert wait_until(lambda: masters(daemons) == ["server1"], timeout=10)
    script = lab.run_dir / "spoof.py"
    script.write_text(SPOOF)
    expected = {"ttl254": "bad_ttl", "checksum": "bad_checksum", "truncated": "truncated", "vrid": "unknown_vrid",
                "version": "bad_version"}
    for kind, reason in expected.items():
        sent = lab.run("client1", [sys.executable, str(script), kind], timeout=60)
        assert sent.returncode == 0, sent.stderr
        for agent in daemons:
            assert wait_until(lambda a=agent, r=reason: _drops(a).get(r, 0) >= 3, timeout=3), (kind, agent.host)
    time.sleep(0.5)
    assert masters(daemons) == ["server1"]
    assert [[e.state for e in agent.events()] for agent in daemons] == [["BACKUP", "MASTER"], ["BACKUP"]]
    assert answers(lab, "client1", [VIP]) == {VIP: "server1"}


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "low", "high"), [("link-cut", 0.2, 0.5), ("agent-term", 0.0, 0.2),
                                                    ("agent-kill", 0.0, 0.5), ("agent-freeze", 0.0, 0.5)])
def test_failover_at_advert_int_100ms(tmp_path, fault, low, high):
    """At advert_int 0.1 s the backup (priority 100) takes over within Master_Down_Interval = 0.36 s."""
    rec = active_standby.run(active_standby.ActiveStandbyOptions(fault=fault, agent="halab", advert_int=0.1,
                                                                 rate=500, before=0.5, after=1.0), tmp_path)
    took_over = [e for e in rec.events if e.host == "server2" and e.state == "MASTER" and e.at > rec.fault.at]
    assert took_over, rec.events
    assert low <= took_over[0].at - rec.fault.at <= high
    if fault in ("link-cut", "agent-term"):
        assert rec.outcome.server_after == "server2"
        assert low <= rec.outcome.outage <= high + 0.1, rec.outcome
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["options"]["agent"] == "halab"


VIP_SAMPLER = """
import json, os, sys, time
from pyroute2 import IPRoute
vip, seconds, out, stop = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
samples = []
with IPRoute() as ipr:
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end and not os.path.exists(stop):
        samples.append((now, bool(ipr.get_addr(address=vip))))
        time.sleep(max(0.0, now + 0.01 - time.monotonic()))
open(out, "w").write(json.dumps(samples))
"""


def test_never_two_masters_while_the_links_are_up(lab):
    """Both servers sample every 10 ms whether they hold the VIP, through an election, a SIGTERM
    failover, the old master's return and its preemption; no 10 ms slot may find it on both, and the
    samples must cover all of it (server1 held, released, held again; server2 held in between)."""
    sampler = lab.run_dir / "vip_sampler.py"
    sampler.write_text(VIP_SAMPLER)
    out = {s: lab.run_dir / f"vip-{s}.json" for s in ("server1", "server2")}
    stop = lab.run_dir / "samplers.stop"  # they sample until told (at most 30 s), not for a guessed time
    samplers = [lab.spawn(s, "sampler", [sys.executable, str(sampler), VIP, "30", str(out[s]), str(stop)])
                for s in out]
    s1 = vrrp(lab, "server1", 200)
    s2 = vrrp(lab, "server2", 100)
    assert wait_until(lambda: masters([s1, s2]) == ["server1"], timeout=5)
    time.sleep(1)
    s1.stop()
    assert wait_until(lambda: masters([s2]) == ["server2"], timeout=2)
    time.sleep(1)
    s1 = vrrp(lab, "server1", 200)
    assert wait_until(lambda: masters([s1, s2]) == ["server1"], timeout=5)
    preempted = time.monotonic()
    time.sleep(1)
    stop.touch()
    for proc in samplers:
        proc.popen.wait(20)
    samples = {s: json.loads(out[s].read_text()) for s in out}
    assert samples["server1"][-1][0] > preempted + 0.5, "the samplers stopped before the preemption settled"
    runs1 = [held for i, (_t, held) in enumerate(samples["server1"]) if i == 0 or held != samples["server1"][i - 1][1]]
    assert runs1[-3:] == [True, False, True], runs1
    assert any(h for _t, h in samples["server2"]), "server2 never held the VIP"
    times2 = [t for t, _h in samples["server2"]]
    both = []
    for t, held1 in samples["server1"]:
        i = bisect.bisect(times2, t)
        # server2 held it at t if it did at its samples just before and just after t
        if held1 and 0 < i < len(times2) and samples["server2"][i - 1][1] and samples["server2"][i][1]:
            both.append(t)
    assert not both, f"{len(both)} samples with the VIP on both servers"


def test_several_agents_on_one_host(lab):
    """One agent process per virtual router on server1; status lists both."""
    a = vrrp(lab, "server1", 200)
    b = HalabVrrp(lab, "server1", instance(lab.topo, "server1", 200, 0.1, vip=IPv4Interface("10.0.0.200/24"),
                                           virtual_router_id=52, name="VI_2"), tag="2").start()
    assert wait_until(lambda: masters([a, b]) == ["server1", "server1"], timeout=5)
    assert wait_until(lambda: answers(lab, "client1", [VIP, "10.0.0.200"]) == {VIP: "server1",
                                                                              "10.0.0.200": "server1"}, timeout=3)
    status = lab.run("server1", [*VRRP, "status"]).stdout
    assert "VI_1" in status and "VI_2" in status
