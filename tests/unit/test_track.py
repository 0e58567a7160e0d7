"""Tracking arithmetic: fall and rise streaks, weights and FAULT."""

from ha.track import Health, ScriptHealth, effect


def test_a_failed_script_needs_rise_successes_in_a_row():
    s = ScriptHealth("check", rise=2, fall=1)
    assert not s.failed  # well until proven otherwise, as in keepalived
    assert s.result(False) and s.failed
    assert not s.result(True) and s.failed
    assert not s.result(False)
    assert not s.result(True) and s.failed
    assert s.result(True) and not s.failed


def test_a_script_fails_only_after_fall_failures_in_a_row():
    s = ScriptHealth("check", rise=1, fall=3)
    s.result(True)
    assert [s.result(ok) for ok in (False, False, True, False, False)] == [False] * 5
    assert not s.failed
    assert s.result(False) and s.failed


def test_weight_zero_means_fault():
    assert effect(100, [Health("eth1", weight=0, failed=True)]) == (True, 100)
    assert effect(100, [Health("eth1", weight=0, failed=False)]) == (False, 100)


def test_weights_add_up_and_stay_in_range():
    tracked = [Health("a", weight=-30, failed=True), Health("b", weight=-90, failed=True),
               Health("c", weight=-10, failed=False)]
    assert effect(200, tracked) == (False, 80)
    assert effect(100, tracked) == (False, 1)
    assert effect(250, [Health("up", weight=50, failed=True)]) == (False, 254)


def test_the_owner_keeps_255_unless_in_fault():
    assert effect(255, [Health("a", weight=-50, failed=True)]) == (False, 255)
