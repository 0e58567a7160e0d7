"""`halab diagnose` on a lab set up wrong, as a student's would be: the two VRRP agents disagree on
the virtual_router_id, so each drops the other's adverts and both become master."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab.helpers import fast_lab, wait_until
from tests.lab.test_up import down_after, halab, nothing_left  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.mininet, pytest.mark.slow]


def test_diagnose_names_a_vrid_mismatch_and_the_split_brain_it_makes(tmp_path, down_after):  # noqa: F811
    lab = Path(fast_lab(tmp_path)).read_text()  # advert_int 0.1 s: two masters within a second
    wrong = lab.replace("virtual_router_id = 51, priority = 100", "virtual_router_id = 52, priority = 100")
    assert wrong != lab
    (tmp_path / "wrong.toml").write_text(wrong)
    up = halab("up", "-f", str(tmp_path / "wrong.toml"), "--detach", "--out", str(tmp_path))
    assert up.returncode == 0, up.stderr

    def both_masters() -> bool:
        return json.loads(halab("status", "--json").stdout)["vip"]["claimed_by"] == ["server1", "server2"]

    assert wait_until(both_masters, timeout=15)
    said = halab("diagnose")
    assert said.returncode == 0, said.stderr
    assert "- 2 VRRP masters of 10.0.0.100: server1, server2 (split brain)." in said.stdout
    assert "- server1 and server2 use different virtual_router_id (51 and 52)." in said.stdout
    assert "dropped" in said.stdout and "packet(s): unknown_vrid." in said.stdout
    facts = json.loads(halab("diagnose", "--json").stdout)["facts"]
    assert facts["arp"]["client1"] in ("server1", "server2")  # the client reaches one of the two
    assert {i["vrid"] for i in facts["vrrp"]} == {51, 52}
    assert halab("down").returncode == 0
    assert nothing_left() == []
