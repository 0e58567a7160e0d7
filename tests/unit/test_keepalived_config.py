"""The keepalived configuration halab writes, and the values it refuses."""

from pathlib import Path

import pytest

from harness.keepalived import render_config
from harness.vrrp_daemons import VrrpInstance


def test_config_uses_keepalived_keys_and_vrrp_v3():
    inst = VrrpInstance(interface="server1-eth0", priority=200, virtual_ipaddress="10.0.0.100/24",
                        advert_int=0.1)
    conf = render_config("server1", inst, Path("/run/x/notify.sh"))
    for line in ("vrrp_version 3", "interface server1-eth0", "virtual_router_id 51", "priority 200",
                 "advert_int 0.1", "10.0.0.100/24", "notify /run/x/notify.sh", "state BACKUP"):
        assert line in conf
    assert "nopreempt" not in conf
    assert conf.count("{") == conf.count("}")


def test_nopreempt():
    inst = VrrpInstance(interface="e", priority=100, virtual_ipaddress="10.0.0.100/24", preempt=False)
    assert "nopreempt" in render_config("h", inst, Path("/n"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"priority": 0}, "priority=0"),
    ({"advert_int": 0.001}, "advert_int=0.001"),
    ({"virtual_router_id": 256}, "virtual_router_id=256"),
])
def test_out_of_range_values_are_named(kwargs, message):
    base = {"interface": "e", "priority": 100, "virtual_ipaddress": "10.0.0.100/24"}
    with pytest.raises(ValueError, match=message):
        VrrpInstance(**{**base, **kwargs})
