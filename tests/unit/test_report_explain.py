"""What a timeline plot says about why the outage lasted as long as it did."""

import pytest

from harness.report import detection_window, settings


def test_vrrp_takeover_is_due_a_master_down_interval_after_the_last_advert_heard():
    start, end, why = detection_window({"advert_int": 1.0, "fault": "link-cut"})
    # backup priority 100: skew = (256 - 100) / 256 x 1 s = 0.61 s; MDI = 3.61 s; the last
    # advert left at most 1 s before the fault
    assert end == pytest.approx(3.609375) and start == pytest.approx(2.609375)
    assert why == "Master_Down_Interval 3 x 1 s + skew 0.61 s = 3.61 s"
    start, end, _ = detection_window({"advert_int": 0.1, "fault": "host-crash"})
    assert (start, end) == (pytest.approx(0.2609375), pytest.approx(0.3609375))


def test_checks_bound_a_process_death_behind_a_live_link():
    assert detection_window({"check_interval": 0.1, "fall": 3, "fault": "process-kill"}) == \
        (pytest.approx(0.2), pytest.approx(0.3), "3 failed checks, every 0.1 s")


@pytest.mark.parametrize("options", [
    {"advert_int": 1.0, "fault": "agent-term"},         # a goodbye: no timer to wait out
    {"advert_int": 1.0, "fault": "service-kill"},       # the track script, not the adverts
    {"check_interval": 0.1, "fault": "backend-crash"},  # the switch sees the port go down
    {"interval": 0.1, "fault": "node-crash"},
    {},
])
def test_no_window_where_no_timer_bounds_the_takeover(options):
    assert detection_window(options) is None


def test_the_settings_that_set_the_pace():
    assert settings({"agent": "keepalived", "advert_int": 0.1}) == "keepalived VRRP, advert_int 0.1 s"
    assert settings({"lb": "haproxy", "check_interval": 0.1, "fall": 3}) == \
        "haproxy balancer, checks every 0.1 s, out after 3"
    assert settings({"interval": 0.1, "detector": "phi"}) == "heartbeat every 0.1 s, phi"
    assert settings({"manager": "patroni", "method": "x"}) == "manager patroni, method x"
    assert settings({}) == ""
