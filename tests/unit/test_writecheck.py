"""The write checker classifies every write and finds two writers; fakes are fine here: it is logic."""
import pytest

from harness.writecheck import Write, check, stale_writes, write_outage


def ok(i, t, node="db1", timeline=1, took=0.01):
    return Write(i, t, t + took, "ok", node, timeline)


def test_every_acknowledged_write_present_is_valid():
    writes = [ok(i, i * 0.1) for i in range(10)]
    v = check(writes, range(10))
    assert v.valid and v.acknowledged == 10 and v.invoked == 10 and v.acknowledged_lost == ()


def test_an_acknowledged_write_missing_from_the_table_is_lost():
    v = check([ok(1, 0.0), ok(2, 0.1), ok(3, 0.2)], {1, 3})
    assert v.acknowledged_lost == (2,) and not v.valid


def test_indeterminate_writes_may_be_there_or_not():
    """Timeouts are allowed either way; the checker counts how many of them did land."""
    writes = [Write(1, 0.0, 1.0, "timeout"), Write(2, 0.1, 1.1, "timeout"), Write(3, 0.2, 1.2, "timeout"), ok(4, 2.0)]
    v = check(writes, {1, 4})
    assert v.valid and v.indeterminate == 3 and v.indeterminate_present == 1


def test_a_refused_write_that_appears_anyway_is_an_anomaly():
    v = check([Write(1, 0.0, 0.01, "failed"), Write(2, 0.1, 0.11, "failed")], {2})
    assert v.failed == 2 and v.failed_present == (2,) and not v.valid


def test_rows_nobody_wrote_are_reported():
    v = check([ok(1, 0.0)], {1, 99})
    assert v.never_written == (99,) and not v.valid


def test_a_failover_moves_to_a_new_timeline_without_stale_writes():
    writes = [ok(1, 0.0), ok(2, 0.1), Write(3, 0.2, 1.2, "timeout"), ok(4, 1.3, "db2", 2), ok(5, 1.4, "db2", 2)]
    assert check(writes, {1, 2, 4, 5}).valid


def test_the_old_primary_acknowledging_after_the_new_one_did_is_a_split_brain():
    writes = [ok(1, 0.0), ok(2, 1.0, "db2", 2), ok(3, 1.5, "db1", 1), ok(4, 1.6, "db2", 2)]
    assert stale_writes(writes) == (3,)
    assert not check(writes, {1, 2, 3, 4}).valid


def test_an_old_timeline_write_invoked_before_the_new_one_answered_is_concurrent_not_stale():
    # write 2 was in flight on db1 when db2 first acknowledged: real time cannot order them.
    writes = [ok(1, 0.0), Write(2, 0.95, 1.2, "ok", "db1", 1), ok(3, 1.0, "db2", 2)]
    assert stale_writes(writes) == ()


def test_two_servers_on_one_timeline_are_two_writers():
    writes = [ok(1, 0.0, "db1", 1), ok(2, 0.1, "db2", 1)]
    assert stale_writes(writes) == (2,)


def test_duplicate_ids_and_unknown_outcomes_are_refused():
    with pytest.raises(ValueError, match=r"^two writes share an id: the checker needs unique ids$"):
        check([ok(1, 0.0), ok(1, 0.1)], {1})
    with pytest.raises(ValueError, match=r"^write 1: outcome 'maybe' is not one of \('ok', 'failed', 'timeout'\)$"):
        Write(1, 0.0, 0.1, "maybe")


def test_write_outage_runs_from_the_last_ack_before_to_the_first_after():
    writes = [ok(1, 0.0), ok(2, 0.5), Write(3, 0.9, 1.9, "timeout"), ok(4, 2.0, "db2", 2, took=0.25)]
    assert write_outage(writes, fault_at=0.8) == pytest.approx(2.25 - 0.51)
    assert write_outage(writes[:3], fault_at=0.8) is None


def test_a_write_invoked_the_instant_the_new_timeline_answered_is_concurrent_not_stale():
    """Stale means invoked strictly after the newer timeline's first ack came back; the same instant is unordered."""
    new = ok(2, 1.0, "db2", 2, took=0.5)  # db2's first acknowledgement comes back at 1.5
    assert stale_writes([ok(1, 0.0), new, Write(3, 1.5, 1.75, "ok", "db1", 1)]) == ()
    assert stale_writes([ok(1, 0.0), new, Write(3, 1.625, 1.75, "ok", "db1", 1)]) == (3,)


def test_writes_without_a_known_timeline_are_not_judged_and_hide_nothing():
    """An acknowledgement that did not say its timeline cannot be stale, and the writes after it are still judged."""
    writes = [Write(1, 0.0, 0.01, "ok"), ok(2, 0.1, "db1", 1), Write(3, 0.15, 0.16, "ok", "db3"), ok(4, 0.2, "db2", 1)]
    assert stale_writes(writes) == (4,)
    assert check(writes, {1, 2, 3, 4}).stale == (4,)


def test_write_outage_without_an_ack_before_the_fault_counts_from_the_fault():
    """Nothing acknowledged before the fault: the outage starts at the fault itself."""
    writes = [Write(1, 0.0, 1.0, "timeout"), ok(2, 1.5, "db2", 2, took=0.25)]
    assert write_outage(writes, fault_at=0.5) == 1.25


def test_write_outage_at_the_fault_instant():
    """An ack that came back as the fault struck is before it; a write invoked as it struck is after it."""
    writes = [ok(1, 0.0), ok(2, 0.5, took=0.25), ok(3, 0.75, "db2", 2, took=0.5)]
    assert write_outage(writes, fault_at=0.75) == 0.5  # from write 2's ack at 0.75 to write 3's at 1.25
