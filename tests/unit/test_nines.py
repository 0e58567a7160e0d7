"""`halab nines`: availability arithmetic against figures worked out by hand, and the result files it reads."""

import json
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
    assert nines.nines(0) == 0 and math.copysign(1, nines.nines(0)) == 1  # 0, not -0
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
    assert d.failover == YEAR_S  # each part at most a year too: no figure past what the model means
    assert d.total == YEAR_S and d.availability == 0 and d.nines == 0
    tiny = nines.tier(Tier(2, 1, equivalent_outage=1.0, mtbf=1e-300, mttr=MTTR))  # would be 1e307 years
    assert tiny.failover == YEAR_S and tiny.all_down == YEAR_S and nines.duration(tiny.failover)


def test_a_tier_refuses_what_cannot_be():
    Tier(1, 1, 0.0, MTBF, 0.0)  # one server, nothing lost, repaired at once: allowed
    Tier(3, 3, 0.1, MTBF, MTTR)
    for servers, serving, outage, mtbf, mttr, why in (
            (2, 0, 0.1, MTBF, MTTR, "^0 serving of 2 servers$"), (2, 3, 0.1, MTBF, MTTR, "^3 serving of 2 servers$"),
            (2, 1, -0.1, MTBF, MTTR, r"^equivalent outage -0.1 s is negative$"), (2, 1, 0.1, 0, MTTR, "^MTBF 0 s"),
            (2, 1, 0.1, MTBF, -1, "MTTR -1 s")):
        with pytest.raises(ValueError, match=why):
            Tier(servers, serving, outage, mtbf, mttr)


def test_equivalent_outage_is_what_was_lost_at_the_probe_rate():
    assert nines.equivalent_outage(362, 1000) == pytest.approx(0.362)
    assert nines.equivalent_outage(0, 100) == 0
    assert nines.equivalent_outage(3, 0.5) == 6.0  # a slow probe, one request every 2 s
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


def test_rpo_from_content_sync_at_the_crash_and_at_worst():
    rpo = nines.rpo_from_sync("rsync", lost_at_crash=0.95, writes_lost=7, worst_staleness=1.08)
    assert (rpo.source, rpo.seconds, rpo.writes_lost, rpo.worst) == ("content sync (rsync)", 0.95, 7, 1.08)
    zero = nines.rpo_from_sync("lsyncd", 0.0, 0, None)
    assert (zero.seconds, zero.writes_lost, zero.worst) == (0.0, 0, None)


@pytest.mark.parametrize("bad", [(-0.1, 0, 1.0), (0.0, -1, 1.0), (0.0, 0, -1.0)])
def test_negative_sync_figures_are_refused(bad):
    with pytest.raises(ValueError, match="never negative"):
        nines.rpo_from_sync("tar", *bad)


# --- `halab nines`: result files in, figures out -------------------------------------------------------------

FAULT = 10.0


def active_standby(down: int = 40) -> list[Request]:
    """100 requests/s from t=8 s, all answered by server1 until the fault at 10 s, then `down` lost, then
    server2: lost_after_fault = down, so the equivalent outage is down/100 s."""
    reqs = []
    for i in range(400):
        t = 8 + i / 100
        if 200 <= i < 200 + down:
            reqs.append(Request(i, t, error="timeout"))
        else:
            reqs.append(Request(i, t, t + 0.001, "server1" if i < 200 else "server2"))
    return reqs


def active_active() -> list[Request]:
    """Three backends in turn; backend3 dies at the fault and gets its third for 0.3 s more: 10 requests of
    the 30 sent meanwhile are lost, an equivalent outage of 0.1 s. Its turns then go to backend1."""
    reqs = []
    for i in range(400):
        t, turn = 8 + i / 100, f"backend{i % 3 + 1}"
        if turn == "backend3" and 200 <= i < 230:
            reqs.append(Request(i, t, error="refused"))
        else:
            reqs.append(Request(i, t, t + 0.001, "backend1" if turn == "backend3" and i >= 230 else turn))
    return reqs


def write_result(where, requests, scenario="active-standby", options=None, database=None, **top):
    """A result.json as `halab run` writes it (schema 2), the outcome analysed from `requests`."""
    from dataclasses import asdict

    from harness.measure import analyse

    where.mkdir(parents=True, exist_ok=True)
    data = {"schema_version": 2, "about": {"versions": {"halab": "0.1.0"}}, "scenario": scenario,
            "options": {"rate": 100.0, "proto": "udp", "before": 2.0, "after": 2.0,
                        **(options or {"fault": "link-cut", "agent": "halab", "advert_int": 0.1})},
            "fault": {"kind": "cut-link", "target": "server1-s1", "at": FAULT},
            "outcome": asdict(analyse(requests, FAULT)), "agent_events": [],
            "timeline": [asdict(r) for r in requests], "notes": [], **top}
    if database is not None:
        data["database"] = database
    path = where / "result.json"
    path.write_text(json.dumps(data))
    return path


def halab(capsys, *argv):
    from harness import cli

    code = cli.main(["nines", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def report(capsys, *argv):
    code, out, err = halab(capsys, *argv, "--json")
    assert code == 0 and err == ""
    return json.loads(out)


def test_no_argument_prints_the_three_budgets(capsys):
    assert halab(capsys) == (0, "availability   downtime a year   a month   (a 365-day year)\n"
                                "99.9 %         8 h 45 m 36 s     43 m 48 s\n"
                                "99.99 %        52 m 34 s         4 m 23 s\n"
                                "99.999 %       5 m 15 s          26 s\n", "")


def test_one_target_on_its_own(capsys):
    code, out, _ = halab(capsys, "--availability", "99.999")
    assert code == 0 and out.splitlines()[1:] == ["99.999 %       5 m 15 s          26 s"]
    out = report(capsys, "--availability", "99.95", "--availability", "99.99")
    assert out["budgets"] == [{"availability_percent": 99.95, "yearly_s": pytest.approx(15768),
                               "monthly_s": pytest.approx(1314)},
                              {"availability_percent": 99.99, "yearly_s": pytest.approx(3153.6),
                               "monthly_s": pytest.approx(262.8)}]
    assert out["groups"] == [] and "spof" not in out and out["year_s"] == 31_536_000


def test_an_active_standby_run_by_hand(tmp_path, capsys):
    """40 requests lost at 100/s: 0.4 s per failure; 1 of 2 servers serving. Defaults (8760 h, 4 h):
    0.4 s of failovers + 6.5693 s with both down = 6.9693 s a year, 1 - 6.9693/31536000 = 99.999978 %."""
    run = write_result(tmp_path / "run", active_standby())
    out = report(capsys, str(tmp_path / "run"))
    (g,) = out["groups"]
    assert g["name"] == "active-standby fault=link-cut agent=halab"
    assert g["files"] == [str(run)] and g["runs"] == 1
    assert g["outage_s"]["median"] == pytest.approx(0.41)  # last good 9.99, first good 10.40
    assert g["equivalent_outage_s"]["median"] == pytest.approx(0.4)
    assert (g["serving"], g["servers"]) == (1, 2)
    d = g["downtime"]
    assert d["failover_s"] == pytest.approx(0.4) and d["all_down_s"] == pytest.approx(6.5693417, abs=1e-6)
    assert d["yearly_s"] == pytest.approx(6.9693417, abs=1e-6)
    assert d["availability"] == pytest.approx(1 - 6.9693417 / YEAR_S, abs=1e-12)
    assert d["nines"] == pytest.approx(6.65561, abs=1e-5)
    assert g["rpo"] is None and "note" not in g
    assert out["inputs"] == {"mtbf_hours": 8760, "mtbf_source": "input: the default; --mtbf HOURS to change",
                             "mttr_hours": 4, "mttr_source": "input: the default; --mttr HOURS to change"}
    assert out["spof"]["yearly_s"] == pytest.approx(14400)
    assert "series" not in out

    code, text, _ = halab(capsys, str(run))
    assert code == 0
    assert text.splitlines() == [
        "MTBF                  8760 h per server                    [input: the default; --mtbf HOURS to change]",
        "MTTR                  4 h per server                       [input: the default; --mttr HOURS to change]",
        "",
        "active-standby fault=link-cut agent=halab: 1 run",
        f"  measured in {run}",
        "  outage                0.41 s                               [measured: outcome.outage]",
        "  equivalent outage     0.4 s                                [measured: outcome.lost_after_fault / "
        "options.rate]",
        "  servers               1 serving of 2                       [measured: timeline[].server]",
        "  failovers             0.4 s a year                         [1 failure(s) a year x 1 serving x 0.4 s]",
        "  every server down     6.6 s a year                         [(MTTR / (MTBF + MTTR))^2 of a year]",
        "  yearly downtime       7 s: 99.999978 %, 6.66 nines",
        "",
        "single server, no failover (the baseline, from the inputs only): 4 h 0 m 0 s a year, 99.954 %, 3.34 nines",
    ]


def test_active_active_loses_only_the_dead_servers_share(tmp_path, capsys):
    """3 serving; 10 lost at 100/s: 0.1 s per failure, though clients saw no silence longer than 30 ms.
    Failovers 3 x 1 x 0.1 = 0.3 s; all three down: (14400/31550400)^3 of the year = 0.0029983 s."""
    write_result(tmp_path / "aa", active_active(), "active-active", {"fault": "backend-crash",
                                                                     "algorithm": "round-robin"})
    (g,) = report(capsys, str(tmp_path / "aa"))["groups"]
    assert g["outage_s"]["median"] == pytest.approx(0.02)
    assert g["equivalent_outage_s"]["median"] == pytest.approx(0.1)
    assert (g["serving"], g["servers"]) == (3, 3)
    assert g["downtime"]["failover_s"] == pytest.approx(0.3)
    assert g["downtime"]["all_down_s"] == pytest.approx(0.0029983, abs=1e-7)
    assert g["downtime"]["yearly_s"] == pytest.approx(0.3029983, abs=1e-7)


def test_inputs_given_are_said_to_be_given(tmp_path, capsys):
    """MTBF 876 h (10 failures a year), MTTR 1 h: 10 x 0.4 = 4 s of failovers; both down
    (3600/3157200)^2 x 31536000 = 41.0022 s."""
    write_result(tmp_path / "run", active_standby())
    out = report(capsys, str(tmp_path / "run"), "--mtbf", "876", "--mttr", "1")
    assert out["inputs"] == {"mtbf_hours": 876, "mtbf_source": "input: --mtbf",
                             "mttr_hours": 1, "mttr_source": "input: --mttr"}
    d = out["groups"][0]["downtime"]
    assert d["failover_s"] == pytest.approx(4.0)
    assert d["all_down_s"] == pytest.approx(41.00222, abs=1e-4)
    assert out["spof"]["yearly_s"] == pytest.approx(36000)
    _, text, _ = halab(capsys, str(tmp_path / "run"), "--mtbf", "876")
    assert "[10 failure(s) a year x 1 serving x 0.4 s]" in text and "[input: --mtbf]" in text


def test_a_runs_directory_gives_its_runs_in_order_and_their_medians(tmp_path, capsys):
    base = tmp_path / "20261127-120000-active-standby"
    files = [write_result(base / f"run-{n}", active_standby(down)) for n, down in ((1, 30), (2, 50), (10, 40))]
    (base / "summary.json").write_text("{}")
    (g,) = report(capsys, str(base))["groups"]
    assert g["files"] == [str(f) for f in files] and g["runs"] == 3
    assert g["equivalent_outage_s"]["median"] == pytest.approx(0.4)  # of 0.3, 0.5, 0.4
    assert (g["outage_s"]["min"], g["outage_s"]["median"], g["outage_s"]["max"]) == (
        pytest.approx(0.31), pytest.approx(0.41), pytest.approx(0.51))
    _, text, _ = halab(capsys, str(base))
    assert "active-standby fault=link-cut agent=halab: 3 runs" in text
    assert "  outage                0.41 s median (0.31 s to 0.51 s)" in text
    assert "  equivalent outage     0.4 s median" in text


def test_a_file_and_its_directory_are_one_run(tmp_path, capsys):
    run = write_result(tmp_path / "run", active_standby())
    (g,) = report(capsys, str(run), str(tmp_path / "run"))["groups"]
    assert g["runs"] == 1


def test_groups_by_scenario_and_options_but_not_the_probes(tmp_path, capsys):
    write_result(tmp_path / "a", active_standby(30), options={"fault": "link-cut", "agent": "halab",
                                                              "advert_int": 0.1})
    write_result(tmp_path / "b", active_standby(50), options={"fault": "link-cut", "agent": "halab",
                                                              "advert_int": 1.0})
    write_result(tmp_path / "c", active_standby(40), options={"fault": "link-cut", "agent": "halab",
                                                              "advert_int": 0.1})
    data = json.loads((tmp_path / "c" / "result.json").read_text())
    data["options"].update(rate=50.0, before=5.0, after=9.0, master="server1")  # the probe's, and who led
    (tmp_path / "c" / "result.json").write_text(json.dumps(data))
    out = report(capsys, *(str(tmp_path / d) for d in "abc"))
    assert [(g["name"], g["runs"]) for g in out["groups"]] == [
        ("active-standby fault=link-cut agent=halab advert_int=0.1", 2),
        ("active-standby fault=link-cut agent=halab advert_int=1.0", 1)]
    assert out["groups"][0]["equivalent_outage_s"]["median"] == pytest.approx((0.3 + 0.8) / 2)  # 40 at 50/s


def test_series_of_a_web_tier_and_a_db_tier(tmp_path, capsys):
    """A = (1 - 0.3029983/Y) x (1 - 6.9693417/Y): 7.2723 s a year, less a product of order 1e-12 s."""
    write_result(tmp_path / "web", active_active(), "active-active", {"fault": "backend-crash"})
    write_result(tmp_path / "db", active_standby(), "three-tier", {"fault": "db-primary-crash", "manager": "halab"},
                 database={"verdict": {"acknowledged_lost": []}})
    out = report(capsys, str(tmp_path / "web"), str(tmp_path / "db"), "--series")
    s = out["series"]
    assert s["groups"] == ["active-active fault=backend-crash", "three-tier fault=db-primary-crash manager=halab"]
    assert s["yearly_s"] == pytest.approx(0.3029983 + 6.9693417, abs=1e-5)
    assert s["availability"] == pytest.approx(1 - 7.27234 / YEAR_S, abs=1e-12)
    assert s["nines"] == pytest.approx(-math.log10(7.27234 / YEAR_S), abs=1e-5)
    _, text, _ = halab(capsys, str(tmp_path / "web"), str(tmp_path / "db"), "--series")
    assert text.splitlines()[-1] == "in series (every group needed at once): 7.3 s a year, 99.999977 %, 6.64 nines"


def test_the_rpo_of_a_database_tier(tmp_path, capsys):
    """Writes 150 and 190 acknowledged and lost: the older was sent at 9.5 s, 0.5 s before the fault."""
    write_result(tmp_path / "one", active_standby(), "three-tier", {"fault": "db-primary-crash"},
                 database={"verdict": {"acknowledged_lost": [190, 150]}})
    write_result(tmp_path / "two", active_standby(), "three-tier", {"fault": "db-primary-crash"},
                 database={"verdict": {"acknowledged_lost": []}})
    (g,) = report(capsys, str(tmp_path / "one"), str(tmp_path / "two"))["groups"]
    assert g["rpo"] == {"writes_lost": 2, "runs_with_loss": 1, "runs": 2, "worst_s": pytest.approx(0.5),
                        "kind": "acknowledged writes", "source": "measured: database.verdict.acknowledged_lost"}
    _, text, _ = halab(capsys, str(tmp_path / "one"), str(tmp_path / "two"))
    assert ("  RPO                   0.5 s: 2 acknowledged writes lost in 1 of 2 run(s); the oldest written "
            "that long before the fault [measured: database.verdict.acknowledged_lost]") in text
    _, text, _ = halab(capsys, str(tmp_path / "two"))
    assert "  RPO                   0: no acknowledged write lost, 1 run(s)" in text


def test_the_rpo_of_content_sync(tmp_path, capsys):
    """A sync run's result: at the crash the standby lacked 4 writes, the oldest 0.9 s old."""
    sync = {"method": "rsync", "writes": {"p50": 0.5, "p99": 1.0, "max": 1.1},
            "lost_at_crash": {"rpo": 0.9, "writes_lost": 4}}
    write_result(tmp_path / "one", active_standby(), "sync", {"method": "rsync", "period": 1.0}, sync=sync)
    (g,) = report(capsys, str(tmp_path / "one"))["groups"]
    assert g["rpo"] == {"writes_lost": 4, "runs_with_loss": 1, "runs": 1, "worst_s": pytest.approx(0.9),
                        "kind": "file writes", "source": "measured: sync.lost_at_crash"}
    _, text, _ = halab(capsys, str(tmp_path / "one"))
    assert "  RPO                   0.9 s: 4 file writes lost in 1 of 1 run(s)" in text
    sync["lost_at_crash"]["writes_lost"] = -1
    write_result(tmp_path / "bad", active_standby(), "sync", {"method": "rsync"}, sync=sync)
    code, out, err = halab(capsys, str(tmp_path / "bad"))
    assert code == 2 and out == "" and "sync.lost_at_crash.writes_lost is -1, not a count" in err


def test_a_run_that_did_not_recover_gets_no_availability(tmp_path, capsys):
    write_result(tmp_path / "ok", active_standby())
    write_result(tmp_path / "down", active_standby(down=200))  # lost until the probe ended
    out = report(capsys, str(tmp_path / "ok"), str(tmp_path / "down"))
    (g,) = out["groups"]
    assert g["outage_s"]["not_recovered"] == 1 and g["outage_s"]["median"] == pytest.approx(0.41)
    assert g["downtime"] is None and "did not recover" in g["note"]
    _, text, _ = halab(capsys, str(tmp_path / "ok"), str(tmp_path / "down"))
    assert "0.41 s median (0.41 s to 0.41 s), 1 run(s) not recovered" in text
    assert "  yearly downtime       none computed: a run did not recover" in text


def test_series_with_a_group_without_availability(tmp_path, capsys):
    write_result(tmp_path / "down", active_standby(down=200))
    write_result(tmp_path / "aa", active_active(), "active-active", {"fault": "backend-crash"})
    assert report(capsys, str(tmp_path / "down"), str(tmp_path / "aa"), "--series")["series"] is None
    _, text, _ = halab(capsys, str(tmp_path / "down"), str(tmp_path / "aa"), "--series")
    assert text.splitlines()[-1] == ("in series (every group needed at once): none computed (a group has no "
                                     "availability)")


def test_nobody_answering_before_the_fault_gives_no_availability(tmp_path, capsys):
    reqs = [Request(r.seq, r.sent, error="timeout") if r.sent < FAULT else r for r in active_standby(down=0)]
    write_result(tmp_path / "late", reqs)
    (g,) = report(capsys, str(tmp_path / "late"))["groups"]
    assert g["serving"] == 0 and g["downtime"] is None and "nothing to fail over from" in g["note"]


# --- bad input: one error naming the file, the key and the value, exit 2, nothing printed on stdout ---------


def _broken(tmp_path, change):
    path = write_result(tmp_path / "run", active_standby(), "three-tier", {"fault": "db-primary-crash"},
                        database={"verdict": {"acknowledged_lost": [210]}})
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def _set(key, value):
    def change(data):
        *parents, last = key.split(".")
        for p in parents:
            data = data[int(p)] if isinstance(data, list) else data[p]
        index = int(last) if isinstance(data, list) else last
        if value is KeyError:
            del data[index]
        else:
            data[index] = value
    return change


@pytest.mark.parametrize(("change", "problem"), [
    (_set("schema_version", 1), "schema_version is 1; this halab reads result files of version 2."),
    (_set("schema_version", KeyError), "schema_version is missing; this halab reads result files of version 2."),
    (_set("schema_version", "2"), "schema_version is '2';"),
    (_set("scenario", ""), "scenario is '', not a scenario name."),
    (_set("options", [1]), "options is [1], not an object."),
    (_set("options.rate", 0), "options.rate is 0, not a rate above 0."),
    (_set("options.rate", True), "options.rate is True, not a rate above 0."),
    (_set("options.rate", KeyError), "options.rate is missing, not a rate above 0."),
    (_set("fault.at", "10"), "fault.at is '10', not a time."),
    (_set("outcome.outage", -1), "outcome.outage is -1, not seconds or null."),
    (_set("outcome.lost_after_fault", 1.5), "outcome.lost_after_fault is 1.5, not a count."),
    (_set("outcome.lost_after_fault", -1), "outcome.lost_after_fault is -1, not a count."),
    (_set("outcome.lost_after_fault", False), "outcome.lost_after_fault is False, not a count."),
    (_set("timeline", {}), "timeline is {}, not a list of requests."),
    (_set("timeline.3", 7), "timeline[3] is 7, not a request."),
    (_set("timeline.3.sent", KeyError), "timeline[3].sent is missing, not a time."),
    (_set("timeline.3.sent", None), "timeline[3].sent is None, not a time."),
    (_set("timeline.4.replied", "x"), "timeline[4].replied is 'x', not a time or null."),
    (_set("timeline.5.server", 1), "timeline[5].server is 1, not a name or null."),
    (_set("timeline.6.seq", 6.0), "timeline[6].seq is 6.0, not a number."),
    (_set("database.verdict.acknowledged_lost", [999]), "database.verdict.acknowledged_lost is [999], not a list "
                                                         "of write ids."),
    (_set("database.verdict", None), "database.verdict.acknowledged_lost is missing"),
])
def test_a_bad_result_file_is_one_clear_error(tmp_path, capsys, change, problem):
    path = _broken(tmp_path, change)
    code, out, err = halab(capsys, str(tmp_path / "run"))
    assert (code, out) == (2, "")
    first, fix = err.splitlines()
    assert first.startswith(f"halab: {path}: {problem}")
    assert fix.startswith("Fix: ") and "Traceback" not in err


def test_another_versions_file_says_which_halab_wrote_it(tmp_path, capsys):
    def older(data):
        data["schema_version"] = 1
        data["about"]["versions"]["halab"] = "0.0.9"
    _broken(tmp_path, older)
    _, _, err = halab(capsys, str(tmp_path / "run"))
    assert err.splitlines()[1] == ("Fix: Run the scenario again with this halab, or read the file with the halab "
                                   "that wrote it (the halab 0.0.9 that wrote it).")
    def unknown(data):
        data["schema_version"] = 1
        del data["about"]
    _broken(tmp_path, unknown)
    _, _, err = halab(capsys, str(tmp_path / "run"))
    assert err.splitlines()[1].endswith("the halab that wrote it.")


def test_the_field_error_says_how_to_get_a_good_file(tmp_path, capsys):
    _broken(tmp_path, _set("fault.at", None))
    _, _, err = halab(capsys, str(tmp_path / "run"))
    assert err.splitlines()[1] == ("Fix: The file was changed or cut short: run `halab run three-tier` again and "
                                   "give its result.")
    _broken(tmp_path, _set("scenario", 5))
    _, _, err = halab(capsys, str(tmp_path / "run"))
    assert "scenario is 5" in err and "run the scenario again" in err


def test_one_bad_file_among_good_ones_stops_everything(tmp_path, capsys):
    write_result(tmp_path / "good", active_standby())
    _broken(tmp_path, _set("schema_version", 3))
    code, out, err = halab(capsys, str(tmp_path / "good"), str(tmp_path / "run"), "--availability", "99.9")
    assert (code, out) == (2, "") and "schema_version is 3" in err


@pytest.mark.parametrize(("content", "problem"), [
    (b"{\"schema_version\": 2,\n", "not JSON at line 2."),
    (b"\xff\xfe\xfa", "not JSON."),
    (b"[2]", "a JSON list, not the object of a result file."),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON."),
])
def test_a_file_that_is_not_a_result_object(tmp_path, capsys, content, problem):
    path = tmp_path / "result.json"
    path.write_bytes(content)
    code, out, err = halab(capsys, str(path))
    assert (code, out) == (2, "") and err.splitlines()[0] == f"halab: {path}: {problem}"
    assert err.splitlines()[1].startswith("Fix: ")


def test_a_result_file_is_read_only_so_far(tmp_path, capsys, monkeypatch):
    from harness import ninescli

    assert ninescli.MAX_RESULT_BYTES == 64 * 2**20
    path = write_result(tmp_path / "run", active_standby())
    monkeypatch.setattr(ninescli, "MAX_RESULT_BYTES", path.stat().st_size)
    assert report(capsys, str(path))["groups"][0]["runs"] == 1  # at the limit: read
    monkeypatch.setattr(ninescli, "MAX_RESULT_BYTES", path.stat().st_size - 1)
    code, _, err = halab(capsys, str(path))
    assert code == 2 and f"halab: {path}: more than" in err and "too large for a result file" in err


def test_paths_that_hold_no_result(tmp_path, capsys):
    code, _, err = halab(capsys, str(tmp_path / "nowhere"))
    assert code == 2 and err.startswith(f"halab: {tmp_path / 'nowhere'}: no such file or directory.\nFix: Give a run")
    (tmp_path / "empty").mkdir()
    _, _, err = halab(capsys, str(tmp_path / "empty"))
    assert err.startswith(f"halab: {tmp_path / 'empty'}: no result.json in it, nor run-*/result.json.")
    write_result(tmp_path / "bench" / "halab-1", active_standby())
    write_result(tmp_path / "bench" / "halab-2", active_standby())
    _, _, err = halab(capsys, str(tmp_path / "bench"))
    assert err == (f"halab: {tmp_path / 'bench'}: no result.json in it; 2 of its folders hold one.\n"
                   f"Fix: Name them: `halab nines {tmp_path / 'bench'}/*/`.\n")


@pytest.mark.parametrize(("argv", "problem", "fix"), [
    (["--availability", "100"], "--availability 100 is out of range.", "above 0 and below 100"),
    (["--availability", "0"], "--availability 0 is out of range.", "above 0 and below 100"),
    (["--availability", "99.9", "--availability", "-5"], "--availability -5 is out of range.", "e.g. --availability"),
    (["--availability", "nan"], "--availability nan is out of range.", "above 0"),
    (["RUN", "--mtbf", "0"], "--mtbf 0 is out of range.", "at least one second (1/3600), e.g. --mtbf 8760."),
    (["RUN", "--mttr", "-1"], "--mttr -1 is out of range.", "at least one second (1/3600), e.g. --mttr 4."),
    (["RUN", "--mtbf", "1e-305"], "--mtbf 1e-305 is out of range.", "at least one second"),
    (["RUN", "--mttr", "inf"], "--mttr inf is out of range.", "--mttr 4"),
    (["RUN", "--mtbf", "1e308"], "--mtbf 1e+308 is out of range.", "--mtbf 8760"),  # no longer finite in seconds
    (["--series"], "--series, --mtbf and --mttr apply to measured results; none was given.", "Give a run"),
    (["--mtbf", "100"], "--series, --mtbf and --mttr apply to measured results", "Give a run"),
    (["--mttr", "1"], "--series, --mtbf and --mttr apply to measured results", "Give a run"),
    (["RUN", "--series"], "--series combines tiers; the results given make 1 group.", "active-active run"),
])
def test_bad_arguments(tmp_path, capsys, argv, problem, fix):
    write_result(tmp_path / "run", active_standby())
    code, out, err = halab(capsys, *(str(tmp_path / "run") if a == "RUN" else a for a in argv))
    assert (code, out) == (2, "")
    first, second = err.splitlines()
    assert first.startswith(f"halab: {problem}") and second.startswith("Fix: ") and fix in second


def test_percent_shows_as_many_decimals_as_the_nines_need():
    from harness.ninescli import percent

    assert percent(0.999, nines.nines(0.999)) == "99.900 %"
    assert percent(0.9995433789954338, 3.34) == "99.954 %"
    assert percent(0.5, 0.3) == "50.0 %"
    assert percent(1 - 1e-14, 14.0) == "99.999999999999 %"
    assert percent(1.0, None) == "100 %"
