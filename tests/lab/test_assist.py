"""Failover assist on real Mininet hosts: the switch's controller tells the backup at once that
the master's port went down, and a controller that is frozen or dead changes nothing but the speed."""

import signal
import time

import pytest

from harness.daemons import HalabVrrp
from harness.daemons.vrrp import instance
from harness.faults import Faults
from harness.lab import Lab
from harness.scenarios.active_standby import ActiveStandbyOptions, run
from tests.lab.helpers import start_responders, wait_until
from topologies import ActiveStandbyTopo

pytestmark = pytest.mark.mininet


def test_a_link_cut_at_one_second_adverts_costs_milliseconds_not_master_down_interval(tmp_path):
    """Without assist the backup waits Master_Down_Interval, 3.6 s at advert_int 1 s."""
    rec = run(ActiveStandbyOptions(assist=True, advert_int=1.0, rate=1000, before=0.5, after=1.0), tmp_path)
    outcome = rec.outcome
    assert outcome.server_before == "server1" and outcome.server_after == "server2", outcome
    assert outcome.outage is not None and outcome.outage < 0.2, outcome
    taken = [e for e in rec.events if e.host == "server2" and e.state == "MASTER"]
    assert taken and taken[0].at - rec.fault.at < 0.2, taken


def _master_after(agent: HalabVrrp, since: float) -> float | None:
    """Seconds from `since` until `agent` became MASTER after it, or None."""
    times = [e.at for e in agent.events() if e.state == "MASTER" and e.at > since]
    return times[0] - since if times else None


def test_a_frozen_or_dead_controller_leaves_plain_vrrp(tmp_path):
    advert_int = 0.1  # Master_Down_Interval 0.36 s for the backup
    with Lab(ActiveStandbyTopo(), tmp_path, assist=True) as lab:
        start_responders(lab, ["server1", "server2"])
        agents = {host: HalabVrrp(lab, host, instance(lab.topo, host, prio, advert_int, assist=True)).start()
                  for host, prio in (("server1", 200), ("server2", 100))}
        assert wait_until(lambda: agents["server1"].masters() and agents["server2"].states() == {"VI_1": "BACKUP"},
                          timeout=10)
        faults = Faults(lab)
        assert lab.controller is not None
        for fault in ("freeze", "kill"):
            lab.controller.signal(signal.SIGSTOP if fault == "freeze" else signal.SIGKILL)
            cut = faults.cut_link("server1", "s1")
            assert wait_until(lambda cut=cut: _master_after(agents["server2"], cut.at) is not None, timeout=5)
            took = _master_after(agents["server2"], cut.at)
            # Master_Down_Interval from the master's last advert, which came up to one interval before the cut
            assert took is not None and 0.25 <= took <= 1.0, f"{fault}: the backup took over after {took:.3f} s"
            reasons = [e.reason for e in agents["server2"].events() if e.at > cut.at]
            assert reasons[:1] == ["master down timer expired"], reasons
            faults.restore_link("server1", "s1")
            assert wait_until(lambda: agents["server2"].states() == {"VI_1": "BACKUP"}, timeout=5)
            if fault == "freeze":
                lab.controller.signal(signal.SIGCONT)


def test_a_cut_shorter_than_the_debounce_is_told_to_nobody_and_a_longer_one_is(tmp_path):
    """With a debounce of 0.15 s: a 30 ms flap of the master's link leaves the backup to plain
    VRRP (the master saw its link go and stopped advertising, so the backup's own timer runs out,
    0.26 to 0.36 s after); a 0.3 s cut is told to the backup at 0.15 s."""
    with Lab(ActiveStandbyTopo(), tmp_path, assist=True, assist_debounce=0.15) as lab:
        start_responders(lab, ["server1", "server2"])
        agents = {host: HalabVrrp(lab, host, instance(lab.topo, host, prio, 0.1, assist=True)).start()
                  for host, prio in (("server1", 200), ("server2", 100))}
        faults = Faults(lab)
        for down, told in ((0.03, False), (0.3, True)):
            assert wait_until(lambda: agents["server1"].masters() and agents["server2"].states() == {"VI_1": "BACKUP"},
                              timeout=10)
            cut = faults.cut_link("server1", "s1")
            time.sleep(down)
            faults.restore_link("server1", "s1")
            assert wait_until(lambda cut=cut: _master_after(agents["server2"], cut.at) is not None, timeout=3)
            took = next(e for e in agents["server2"].events() if e.state == "MASTER" and e.at > cut.at)
            assert ("(assist)" in took.reason) == told, (down, took)
