"""The keepalived configuration halab writes, and the values it refuses."""

from pathlib import Path

import pytest

from harness.daemons.vrrp import instance, render_keepalived
from harness.errors import HalabError
from topologies import ActiveStandbyTopo


def test_config_uses_keepalived_keys_and_vrrp_v3():
    conf = render_keepalived("server1", instance(ActiveStandbyTopo(), "server1", 200, advert_int=0.1),
                             Path("/run/x/notify.sh"))
    for line in ("vrrp_version 3", "interface server1-eth0", "virtual_router_id 51", "priority 200",
                 "advert_int 0.1", "10.0.0.100/24", "notify /run/x/notify.sh", "state BACKUP"):
        assert line in conf
    assert "nopreempt" not in conf
    assert conf.count("{") == conf.count("}")


def test_nopreempt():
    inst = instance(ActiveStandbyTopo(), "server2", 100, preempt=False)
    assert "nopreempt" in render_keepalived("h", inst, Path("/n"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"priority": 0}, "priority = 0"),
    ({"advert_int": 0.001}, "advert_int = 0.001"),
    ({"virtual_router_id": 256}, "virtual_router_id = 256"),
])
def test_out_of_range_values_are_named(kwargs, message):
    with pytest.raises(HalabError, match=message):
        instance(ActiveStandbyTopo(), "server1", **{"priority": 100, **kwargs})
