"""`halab compare`'s arithmetic and verdicts, on hand-made result files (the lab test runs it for real)."""

import pytest

from harness.compare import figures, table
from harness.compare.table import AA, AS


def result(servers, lost=0, outage=0.05, last=None, load=None, fault_at=10.0, rate=100.0):
    """A result.json dict: `servers` answer in turn before the fault."""
    timeline = [{"seq": i, "sent": i / rate, "replied": i / rate + 0.02, "server": servers[i % len(servers)]}
                for i in range(int(fault_at * rate))]
    res = {"timeline": timeline, "fault": {"at": fault_at}, "options": {"rate": rate},
           "outcome": {"outage": outage, "lost_after_fault": lost, "last_failure_after": last}}
    if load:
        res["load"] = load
    return res


def load(knee, light_p50=22.0, top=500.0, beyond="above"):
    steps = [{"offered": o, "p50_ms": light_p50 if o == 100 else 200.0, "p99_ms": 25.0, "cpu": {"a": 0.02, "b": 0.0}}
             for o in (100.0, 200.0, top)]
    return {"per_server": 200.0, "service_ms": 20.0, "knee": knee, "steps": steps,
            "knee_beyond": beyond if knee is None else None}


def arch(servers, answering, crash_lost, process_lost, outage, knee, light_p50=22.0, beyond="above"):
    crash = result(answering, lost=crash_lost, outage=outage, last=0.3, load=load(knee, light_p50, beyond=beyond))
    return figures.architecture([crash], [result(answering, lost=process_lost, outage=outage)], servers)


def test_an_architecture_s_figures():
    a = arch(["b1", "b2", "b3"], ["b1", "b2"], crash_lost=0, process_lost=10, outage=0.05, knee=350.0)
    assert a["serving"] == 2 and a["shares"] == {"b1": 0.5, "b2": 0.5, "b3": 0.0}
    assert a["max_over_mean"] == pytest.approx(1.5)        # 500 of 1000 where the mean is 333
    assert a["lost"] == {"crash": 0, "process": 10}
    assert a["equivalent_outage"] == pytest.approx(0.05)   # the median of 0 and 10 lost at 100/s
    assert a["outage"]["crash"] == {"median": 0.05, "min": 0.05, "max": 0.05, "runs": 1, "not_recovered": 0}
    assert a["cpu"] == {"a": 0.02, "b": 0.0}               # at the step nearest one server's capacity
    assert a["availability"]["nines"] > 5


def figures_of(aa, as_, sync=()):
    return {AA: aa, AS: as_, "sync": list(sync)}


def sync_run(method, period, p50):
    return {"method": method, "period": period, "writes": {"p50": p50, "p99": p50 * 2, "max": p50 * 2},
            "deletions": {"count": 0 if method == "tar" else 5, "of": 5}, "half_written": 3 if method == "tar" else 0,
            "lost_at_crash": {"writes_lost": 2, "rpo": 0.5}}


NOTES_LIKE = figures_of(arch(["b1", "b2"], ["b1", "b2"], 0, 13, 0.05, knee=343.0),
                        arch(["s1", "s2"], ["s1"], 336, 129, 3.4, knee=207.0),
                        [sync_run("tar", 1.0, 0.63), sync_run("lsyncd", 1.0, 0.7), sync_run("lsyncd", 0.1, 0.15)])


def verdicts(fig, lang="en"):
    return {r.key: r.verdict for r in table.rows(fig, lang)}


def test_the_rows_in_the_notes_order_with_their_verdicts():
    assert verdicts(NOTES_LIKE) == {"operation": "agrees", "downtime": "roughly", "load": "agrees",
                                    "response": "roughly", "sync": "roughly", "continuity": "agrees"}


def test_the_sync_row_compares_the_shortest_lsyncd_delay_with_tar():
    (row,) = [r for r in table.rows(NOTES_LIKE, "en") if r.key == "sync"]
    assert row.measured_aa.startswith("lsyncd (period 0.1 s): staleness p50 150 ms")
    assert row.measured_as.startswith("tar (period 1 s): staleness p50 630 ms") and "deletions 0/5" in row.measured_as
    assert "(p50 150 ms)" in row.why and "(p50 630 ms)" in row.why


def test_each_verdict_turns_when_its_measurement_does():
    no_loss = figures_of(arch(["b1", "b2"], ["b1", "b2"], 0, 0, 0.01, knee=400.0), NOTES_LIKE[AS])
    assert verdicts(no_loss)["downtime"] == "agrees"
    one_server = figures_of(arch(["b1", "b2"], ["b1"], 0, 13, 0.05, knee=343.0), NOTES_LIKE[AS])
    assert verdicts(one_server)["operation"] == "disagrees" and verdicts(one_server)["load"] == "disagrees"
    same_knee = figures_of(arch(["b1", "b2"], ["b1", "b2"], 0, 13, 0.05, knee=210.0), NOTES_LIKE[AS])
    assert verdicts(same_knee)["response"] == "disagrees"
    faster = figures_of(arch(["b1", "b2"], ["b1", "b2"], 0, 13, 0.05, knee=400.0, light_p50=10.0), NOTES_LIKE[AS])
    assert verdicts(faster)["response"] == "agrees"
    worse = figures_of(arch(["b1", "b2"], ["b1", "b2"], 400, 400, 4.0, knee=343.0), NOTES_LIKE[AS])
    assert verdicts(worse)["downtime"] == "disagrees" and verdicts(worse)["continuity"] == "disagrees"
    tar_quick = figures_of(NOTES_LIKE[AA], NOTES_LIKE[AS], [sync_run("tar", 1.0, 0.1), sync_run("lsyncd", 0.1, 0.2)])
    assert verdicts(tar_quick)["sync"] == "disagrees"
    instant = figures_of(NOTES_LIKE[AA], NOTES_LIKE[AS], [sync_run("tar", 1.0, 0.6), sync_run("rsync", 1.0, 0.01)])
    assert verdicts(instant)["sync"] == "agrees"


def test_without_content_sync_the_row_is_left_out_and_a_curve_that_never_bends_is_a_lower_bound():
    fig = figures_of(arch(["b1", "b2"], ["b1", "b2"], 0, 13, 0.05, knee=None), NOTES_LIKE[AS])
    rows = table.rows(fig, "en")
    assert [r.key for r in rows] == ["operation", "downtime", "load", "response", "continuity"]
    (response,) = [r for r in rows if r.key == "response"]
    assert "knee > 500 req/s" in response.measured_aa and "2.42 times" in response.why


def test_a_curve_past_its_knee_from_the_first_step_is_an_upper_bound_and_a_silent_step_shows_a_dash():
    fig = figures_of(arch(["b1", "b2"], ["b1", "b2"], 0, 13, 0.05, knee=None, light_p50=None, beyond="below"),
                     NOTES_LIKE[AS])
    (response,) = [r for r in table.rows(fig, "en") if r.key == "response"]
    assert "knee < 100 req/s" in response.measured_aa and "light load p50 -" in response.measured_aa
    assert response.verdict == "disagrees"  # 100 / 207: not more load held


def test_both_languages_have_every_word():
    ko, en = table.rows(NOTES_LIKE, "ko"), table.rows(NOTES_LIKE, "en")
    assert [r.name for r in ko] == ["동작방식", "다운타임", "부하관련", "서비스 응답시간", "동기화", "서비스 연속성"]
    assert [r.claim_aa for r in ko][:2] == ["동시에 서로 교대로 실행", "없음"]
    assert len(ko) == len(en) == 6 and all(r.why and r.measured_aa and r.measured_as for r in ko + en)
    with pytest.raises(ValueError):
        table.rows(NOTES_LIKE, "fr")


def test_a_sync_run_s_figures_are_its_result_s_sync_section():
    s = {"method": "tar", "period": 1.0, "writes": {"p50": 0.5}, "deletions": {"count": 0, "of": 4},
         "partial_views": 7, "missing_for_a_moment": 2, "lost_at_crash": {"writes_lost": 3},
         "bytes_per_transfer": 2.5e7, "cpu_seconds_per_second": 0.12, "lags": [0.1, 0.5], "transfers": 9}
    (f,) = figures.sync([{"sync": s}])
    assert f == {"method": "tar", "period": 1.0, "writes": {"p50": 0.5}, "deletions": {"count": 0, "of": 4},
                 "half_written": 9, "lost_at_crash": {"writes_lost": 3}, "bytes_per_transfer": 2.5e7,
                 "cpu_seconds_per_second": 0.12, "lags": [0.1, 0.5]}
    assert figures.sync([]) == []
