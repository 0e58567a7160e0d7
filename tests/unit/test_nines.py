"""`halab nines`: availability arithmetic against figures worked out by hand, and the result files it reads."""

import math

import pytest

from harness import nines
from harness.nines import YEAR_S, Tier
from harness.probe import Request

HOUR = 3600.0


# --- budgets, nines, composition ---------------------------------------------------------------------------


@pytest.mark.parametrize(("percent", "yearly", "monthly", "yearly_text", "monthly_text"), [
    # 31 536 000 s x 0.1 % = 31 536 s = 8 h 45 m 36 s; a twelfth of it 2628 s = 43 m 48 s
    (99.9, 31536.0, 2628.0, "8 h 45 m 36 s", "43 m 48 s"),
    # x 0.01 % = 3153.6 s = 52 m 33.6 s; 262.8 s = 4 m 22.8 s
    (99.99, 3153.6, 262.8, "52 m 34 s", "4 m 23 s"),
    # x 0.001 % = 315.36 s = 5 m 15.36 s; 26.28 s
    (99.999, 315.36, 26.28, "5 m 15 s", "26 s"),
])
def test_the_budgets_of_the_usual_targets(percent, yearly, monthly, yearly_text, monthly_text):
    y, m = nines.budget(percent)
    assert y == pytest.approx(yearly, rel=1e-9) and m == pytest.approx(monthly, rel=1e-9)
    assert nines.duration(y) == yearly_text and nines.duration(m) == monthly_text


def test_a_year_has_365_days_and_a_month_a_twelfth_of_it():
    assert YEAR_S == 31_536_000
    assert nines.MONTH_S == 2_628_000
    assert nines.budget(50) == (15_768_000, 1_314_000)


@pytest.mark.parametrize("percent", [0, 100, -1, 100.5, math.nan])
def test_a_budget_needs_a_percentage_strictly_between_0_and_100(percent):
    with pytest.raises(ValueError, match="not between 0 and 100"):
        nines.budget(percent)


def test_budgets_at_the_edges_of_the_range():
    assert nines.budget(0.5)[0] == pytest.approx(YEAR_S * 0.995)
    assert nines.budget(99.9999)[0] == pytest.approx(31.536)


def test_nines():
    assert nines.nines(0.999) == pytest.approx(3)
    assert nines.nines(0.9) == pytest.approx(1)
    assert nines.nines(0.9995) == pytest.approx(3.30103, abs=1e-5)  # -log10(0.0005)
    assert nines.nines(0) == 0
    assert nines.nines(1) == math.inf
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError, match="fraction between 0 and 1"):
            nines.nines(bad)


def test_availability_is_mtbf_over_mtbf_plus_mttr():
    assert nines.availability(9, 1) == pytest.approx(0.9)
    assert nines.availability(8760 * HOUR, 4 * HOUR) == pytest.approx(8760 / 8764)
    assert nines.availability(1, 0) == 1.0  # repaired at once: never down
    for mtbf, mttr in ((0, 1), (-1, 1), (1, -1)):
        with pytest.raises(ValueError, match="MTBF"):
            nines.availability(mtbf, mttr)


def test_series_multiplies_parallel_multiplies_the_downs():
    assert nines.series(0.9, 0.99) == pytest.approx(0.891)
    assert nines.series(0.999) == 0.999
    assert nines.series() == 1
    assert nines.parallel(0.9, 0.9) == pytest.approx(0.99)        # 1 - 0.1 x 0.1
    assert nines.parallel(0.9, 0.99) == pytest.approx(0.999)      # 1 - 0.1 x 0.01
    assert nines.parallel(0.5) == 0.5
    # a web pair (each 99 %) in front of a DB pair (each 90 %): 0.9999 x 0.99
    assert nines.series(nines.parallel(0.99, 0.99), nines.parallel(0.9, 0.9)) == pytest.approx(0.989901)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (0.3, "0.3 s"), (0.364, "0.36 s"), (6.57, "6.6 s"), (26.28, "26 s"), (59.4, "59 s"),
    (59.6, "60 s"), (60, "1 m 0 s"), (60.4, "1 m 0 s"), (61, "1 m 1 s"), (119.6, "2 m 0 s"),
    (3599.4, "59 m 59 s"), (3600, "1 h 0 m 0 s"), (3661, "1 h 1 m 1 s"), (14400, "4 h 0 m 0 s"),
    (90061, "25 h 1 m 1 s"),
])
def test_durations(seconds, text):
    assert nines.duration(seconds) == text


# --- the tier model ----------------------------------------------------------------------------------------

# Ten failures a year per server (MTBF = YEAR_S / 10 = 3 153 600 s), each repaired in MTBF / 99 (31 854.5 s),
# so each server is down (MTTR / (MTBF + MTTR)) = 1/100 of the time.
MTBF, MTTR = YEAR_S / 10, YEAR_S / 10 / 99


def test_active_standby_tier_by_hand():
    """2 servers, 1 serving; each failure costs 0.5 s. Failovers: 1 x 10 x 0.5 = 5 s a year. Both down at
    once: 0.01^2 of 31 536 000 s = 3153.6 s. In all 3158.6 s: A = 1 - 3158.6/31536000 = 0.99989984,
    3.9993 nines."""
    d = nines.tier(Tier(servers=2, serving=1, equivalent_outage=0.5, mtbf=MTBF, mttr=MTTR))
    assert d.failover == pytest.approx(5.0)
    assert d.all_down == pytest.approx(3153.6)
    assert d.total == pytest.approx(3158.6)
    assert d.availability == pytest.approx(0.99989984145, abs=1e-11)
    assert d.nines == pytest.approx(3.99931198, abs=1e-7)


def test_active_active_tier_by_hand():
    """3 servers, all serving; a failure loses only the dead server's third, 0.5/3 s. Failovers: 3 x 10 x
    0.5/3 = 5 s, as many seconds as Active-Standby: three times the failures, a third of the loss each. All
    three down: 0.01^3 of the year = 31.536 s. In all 36.536 s: 5.936 nines."""
    d = nines.tier(Tier(servers=3, serving=3, equivalent_outage=0.5 / 3, mtbf=MTBF, mttr=MTTR))
    assert d.failover == pytest.approx(5.0)
    assert d.all_down == pytest.approx(31.536)
    assert d.total == pytest.approx(36.536)
    assert d.availability == pytest.approx(1 - 36.536 / 31_536_000, abs=1e-13)
    assert d.nines == pytest.approx(5.9360856, abs=1e-6)


def test_the_classroom_defaults_by_hand():
    """MTBF 8760 h (one failure a year), MTTR 4 h: each server down 14400/31550400 = 4.5641e-4 of the time;
    two at once 2.0831e-7 of the year = 6.5693 s; with a 0.4 s failover, 6.9693 s a year."""
    d = nines.tier(Tier(2, 1, 0.4, 8760 * HOUR, 4 * HOUR))
    assert d.failover == pytest.approx(0.4)
    assert d.all_down == pytest.approx(6.5693417, abs=1e-6)
    assert nines.duration(d.total) == "7 s"


def test_the_single_server_is_down_for_every_repair():
    """No failover: 10 failures a year x 1 h = 36 000 s; A = 1 - 36000/31536000 = 0.998858, 2.94 nines."""
    d = nines.spof(MTBF, HOUR)
    assert (d.failover, d.all_down, d.total) == (pytest.approx(36000), 0, pytest.approx(36000))
    assert d.availability == pytest.approx(0.99885844749, abs=1e-10)
    assert d.nines == pytest.approx(2.9425041, abs=1e-6)
    default = nines.spof(8760 * HOUR, 4 * HOUR)  # one failure a year, 4 h each
    assert nines.duration(default.total) == "4 h 0 m 0 s" and default.nines == pytest.approx(3.3404441, abs=1e-6)
    for mtbf, mttr in ((0, HOUR), (MTBF, -1)):
        with pytest.raises(ValueError, match="MTBF"):
            nines.spof(mtbf, mttr)


def test_downtime_stops_at_a_whole_year():
    d = nines.tier(Tier(2, 1, equivalent_outage=YEAR_S, mtbf=MTBF, mttr=MTTR))  # 10 outages of a year each
    assert d.failover == pytest.approx(10 * YEAR_S)
    assert d.total == YEAR_S and d.availability == 0 and d.nines == 0


def test_a_tier_refuses_what_cannot_be():
    Tier(1, 1, 0.0, MTBF, 0.0)  # one server, nothing lost, repaired at once: allowed
    Tier(3, 3, 0.1, MTBF, MTTR)
    for servers, serving, outage, mtbf, mttr in ((2, 0, 0.1, MTBF, MTTR), (2, 3, 0.1, MTBF, MTTR),
                                                 (2, 1, -0.1, MTBF, MTTR), (2, 1, 0.1, 0, MTTR),
                                                 (2, 1, 0.1, MTBF, -1)):
        with pytest.raises(ValueError):
            Tier(servers, serving, outage, mtbf, mttr)


def test_equivalent_outage_is_what_was_lost_at_the_probe_rate():
    assert nines.equivalent_outage(362, 1000) == pytest.approx(0.362)
    assert nines.equivalent_outage(0, 100) == 0
    for lost, rate in ((-1, 100), (10, 0), (10, -5)):
        with pytest.raises(ValueError, match="lost at"):
            nines.equivalent_outage(lost, rate)


def test_servers_serving_are_those_that_answered_before_the_fault():
    reqs = [Request(0, 9.0, 9.001, "a"), Request(1, 9.5, 9.501, "b"),
            Request(2, 10.0, 10.001, "c"),       # sent at the fault: already the fault's
            Request(3, 9.6, None, "d"),          # no reply: whoever it was meant for did not answer
            Request(4, 9.7, 9.701, None),        # answered by no one named
            Request(5, 11.0, 11.001, "e")]
    assert nines.serving(reqs, fault_at=10.0) == 2
    assert nines.servers(reqs) == 4
    assert nines.serving([], 10.0) == 0 and nines.servers([]) == 0


# --- RPO ---------------------------------------------------------------------------------------------------


def test_rpo_from_the_database_verdict():
    none = nines.rpo_from_database([], fault_at=100.0)
    assert (none.source, none.seconds, none.writes_lost) == ("database", 0.0, 0)
    lost = nines.rpo_from_database([99.5, 98.75, 99.9], fault_at=100.0)
    assert lost.seconds == pytest.approx(1.25) and lost.writes_lost == 3
    after = nines.rpo_from_database([100.5], fault_at=100.0)  # acknowledged after the fault, then lost
    assert after.seconds == 0.0 and after.writes_lost == 1


def test_rpo_from_content_sync_staleness():
    rpo = nines.rpo_from_sync({"method": "rsync-every-5s", "staleness": {"p50": 2.5, "p99": 4.9, "max": 5.2},
                               "lost_at_crash": {"files": 3}})
    assert (rpo.source, rpo.seconds, rpo.worst, rpo.writes_lost) == ("content sync (rsync-every-5s)", 4.9, 5.2, None)
    assert rpo.detail == {"files": 3}
    zero = nines.rpo_from_sync({"method": "drbd", "staleness": {"p99": 0, "max": 0}})
    assert (zero.seconds, zero.worst, zero.detail) == (0.0, 0.0, {})


@pytest.mark.parametrize(("result", "names"), [
    ({"staleness": {"p99": 1, "max": 2}}, "method"),
    ({"method": 3, "staleness": {"p99": 1, "max": 2}}, "method"),
    ({"method": "x", "staleness": [1, 2]}, "staleness"),
    ({"method": "x", "staleness": {"max": 2}}, "staleness.p99 is None"),
    ({"method": "x", "staleness": {"p99": 1}}, "staleness.max is None"),
    ({"method": "x", "staleness": {"p99": "1", "max": 2}}, "staleness.p99 is '1'"),
    ({"method": "x", "staleness": {"p99": True, "max": 2}}, "staleness.p99 is True"),
    ({"method": "x", "staleness": {"p99": 1, "max": -2}}, "staleness.max is -2"),
])
def test_content_sync_results_that_are_not_of_that_shape_are_refused(result, names):
    with pytest.raises(ValueError, match=names):
        nines.rpo_from_sync(result)
