"""Topologies are data: counts, roles, addresses and reachability, without starting anything."""

import pytest

from topologies import TOPOLOGIES, ActiveActiveTopo, ActiveStandbyTopo, ReferenceTopo


def test_active_standby_has_two_servers_a_client_and_a_vip():
    topo = ActiveStandbyTopo()
    assert topo.hosts_with_role("server") == ["server1", "server2"]
    assert topo.hosts_with_role("client") == ["client1"]
    assert topo.switches() == ["s1"]
    assert str(topo.vip) == "10.0.0.100/24"
    assert [str(a) for a in topo.addresses["server2"]] == ["10.0.0.2/24"]
    # every host reaches every other on the one subnet
    assert len(topo.reachable_pairs()) == 3 * 2


@pytest.mark.parametrize(("backends", "clients"), [(3, 2), (5, 1), (1, 4)])
def test_active_active_counts(backends, clients):
    topo = ActiveActiveTopo(backends=backends, clients=clients)
    assert len(topo.hosts_with_role("backend")) == backends
    assert len(topo.hosts_with_role("client")) == clients
    assert len(topo.links()) == backends + clients
    assert topo.vip.ip not in {a.ip for addrs in topo.addresses.values() for a in addrs}


def test_reference_topology_has_two_networks_joined_only_by_the_load_balancers():
    topo = ReferenceTopo(web_servers=3, clients=2)
    assert topo.switches() == ["s1", "s2"]
    assert [str(a) for a in topo.addresses["lb1"]] == ["10.0.0.1/24", "10.0.1.1/24"]
    pairs = {(src, dst) for src, dst, _ip in topo.reachable_pairs()}
    assert ("client1", "lb1") in pairs and ("lb2", "web3") in pairs
    assert ("client1", "web1") not in pairs  # different subnets, no route by design
    assert ("lb1", "lb2") in pairs


def test_link_bandwidth_is_passed_to_every_link():
    topo = ActiveStandbyTopo(bw=10)
    assert all(topo.linkInfo(a, b)["bw"] == 10 for a, b in topo.links())


def test_macs_are_unique_and_interface_names_fit_linux():
    for cls in TOPOLOGIES.values():
        topo = cls()
        macs = [topo.nodeInfo(h)["mac"] for h in topo.hosts()]
        assert len(set(macs)) == len(macs)
        assert all(len(f"{h}-eth9") <= 15 for h in topo.hosts())


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (ActiveActiveTopo, {"backends": 0}, "backends=0"),
    (ActiveStandbyTopo, {"clients": 0}, "clients=0"),
    (ActiveStandbyTopo, {"pairs": 50}, "pairs=50"),
    (ReferenceTopo, {"web_servers": 100}, "web_servers=100"),
])
def test_bad_counts_name_the_argument(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_active_standby_pairs_have_their_own_servers_and_vips_clear_of_the_clients():
    topo = ActiveStandbyTopo(pairs=ActiveStandbyTopo.MAX_PAIRS, clients=99)
    servers = topo.hosts_with_role("server")
    assert len(servers) == 98 and str(topo.addresses["server98"][0].ip) == "10.0.0.98"
    vips = [ActiveStandbyTopo.pair_vip(p).ip for p in range(1, ActiveStandbyTopo.MAX_PAIRS + 1)]
    assert str(vips[0]) == "10.0.0.100" and str(vips[1]) == "10.0.0.202" and str(vips[-1]) == "10.0.0.249"
    taken = {a.ip for h in topo.hosts() for a in topo.addresses[h]}
    assert len(set(vips)) == len(vips) and not taken & set(vips)
