"""The live view's picture: rows by distance from the clients."""

from harness.web.topology import layout, rows


def test_active_standby_reads_clients_switch_servers():
    hosts = {"client1": "client", "server1": "server", "server2": "server"}
    links = [("server1", "s1"), ("server2", "s1"), ("client1", "s1")]
    assert rows(hosts, links) == [["client1"], ["s1"], ["server1", "server2"]]


def test_two_tiers_behind_multi_homed_balancers():
    hosts = {"client1": "client", "lb1": "lb", "lb2": "lb", "web1": "web", "web10": "web", "web2": "web"}
    links = [("client1", "s1"), ("lb1", "s1"), ("lb2", "s1"), ("lb1", "s2"), ("lb2", "s2"),
             ("web1", "s2"), ("web2", "s2"), ("web10", "s2")]
    assert rows(hosts, links) == [["client1"], ["s1"], ["lb1", "lb2"], ["s2"], ["web1", "web2", "web10"]]


def test_nodes_no_client_reaches_come_last_and_every_node_has_a_place():
    hosts = {"client1": "client", "server1": "server", "lonely": "server"}
    links = [("client1", "s1"), ("server1", "s1")]
    assert rows(hosts, links)[-1] == ["lonely"]
    place = layout(hosts, links)
    assert set(place) == {"client1", "s1", "server1", "lonely"}
    assert place["client1"][1] < place["s1"][1] < place["server1"][1] < place["lonely"][1]
    assert place["client1"][0] == 500  # alone in its row: in the middle
