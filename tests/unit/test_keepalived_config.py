"""The keepalived configuration halab writes, and the values it refuses."""

import os
from pathlib import Path

import pytest

from harness.daemons.vrrp import instance, render_keepalived
from harness.errors import HalabError
from topologies import ActiveStandbyTopo


def test_config_uses_keepalived_keys_and_vrrp_v3():
    conf = render_keepalived("server1", instance(ActiveStandbyTopo(), "server1", 200, advert_int=0.1),
                             Path("/run/x/notify.sh"))
    for line in ("vrrp_version 3", "interface server1-eth0", "virtual_router_id 51", "priority 200",
                 "advert_int 0.1", "10.0.0.100/24", 'vrrp_notify_fifo_script "/run/x/notify.sh"',
                 'vrrp_notify_fifo "/run/x/notify.fifo"', "state BACKUP"):
        assert line in conf
    assert "nopreempt" not in conf
    assert conf.count("{") == conf.count("}")


def test_realtime_priority_becomes_vrrp_rt_priority_in_global_defs():
    inst = instance(ActiveStandbyTopo(), "server1", 200)
    assert "vrrp_rt_priority" not in render_keepalived("h", inst, Path("/n"))
    conf = render_keepalived("h", inst, Path("/n"), realtime_priority=10)
    assert "    vrrp_rt_priority 10\n    vrrp_rlimit_rttime 100000\n" in conf.split("vrrp_instance")[0]


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


def test_track_scripts_run_from_their_own_files_and_keepalived_accepts_them(tmp_path):
    """keepalived runs no shell: each track script is a file of its own, named in a vrrp_script."""
    import shutil
    import subprocess

    from ha.vrrp.config import TrackScript

    real = next(n for n in sorted(os.listdir("/sys/class/net")) if n != "lo")  # keepalived -t wants one
    inst = instance(ActiveStandbyTopo(), "server1", 200, interface=real,
                    track_script=(TrackScript(("sh", "-c", "ss -Hltn | grep -q :7000"), interval=1.0, weight=0),))
    check = tmp_path / "track-0.sh"
    conf = render_keepalived("server1", inst, tmp_path / "notify.sh", [check])
    assert f'script "{check}"' in conf and "track_script {\n        chk_0\n    }" in conf
    assert conf.index("vrrp_script chk_0") < conf.index("vrrp_instance")
    if shutil.which("keepalived"):  # its own syntax check, where it is installed
        path = tmp_path / "keepalived.conf"
        path.write_text(conf)
        for script in (check, tmp_path / "notify.sh"):
            script.write_text("#!/bin/sh\nexit 0\n")
            script.chmod(0o700)
        done = subprocess.run(["keepalived", "-t", "-f", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_several_instances_each_with_its_own_track_scripts(tmp_path):
    """One keepalived runs every instance of a host; the scripts are numbered across them."""
    import shutil
    import subprocess

    from ha.vrrp.config import TrackScript

    real = next(n for n in sorted(os.listdir("/sys/class/net")) if n != "lo")
    check = TrackScript(("true",), interval=1.0, weight=0)
    first = instance(ActiveStandbyTopo(), "server1", 200, interface=real, track_script=(check,))
    second = instance(ActiveStandbyTopo(), "server1", 150, interface=real, name="VI_2", virtual_router_id=52,
                      track_script=(check, check))
    scripts = [tmp_path / f"track-{i}.sh" for i in range(3)]
    conf = render_keepalived("server1", (first, second), tmp_path / "notify.sh", scripts)
    assert conf.count("vrrp_instance ") == 2 and conf.count("vrrp_script ") == 3
    one, two = conf.split("vrrp_instance VI_1 {")[1].split("vrrp_instance VI_2 {")
    assert "virtual_router_id 51" in one and "chk_0" in one and "chk_1" not in one
    assert "virtual_router_id 52" in two and "chk_1\n        chk_2\n" in two and "chk_0" not in two
    assert conf.count("{") == conf.count("}")
    if shutil.which("keepalived"):
        path = tmp_path / "keepalived.conf"
        path.write_text(conf)
        for script in (*scripts, tmp_path / "notify.sh"):
            script.write_text("#!/bin/sh\nexit 0\n")
            script.chmod(0o700)
        done = subprocess.run(["keepalived", "-t", "-f", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
