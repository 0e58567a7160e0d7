"""The checks of a lesson's stages, against a running lab: its state, its behaviour under a fault
(measured on the lab itself), a number the student worked out, a prediction then the measurement.

The lab is reached through `LabView` (the real one, harness.lessons.live, talks to the lab's
control socket and reads its probe); this module is the grading arithmetic and the words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.lessons.model import Check, Words
from harness.measure import Outcome, median, percentile


class LabView(Protocol):
    def status(self) -> dict: ...

    def measure(self, fault: str, watch_s: float) -> Outcome:
        """Apply the fault (as typed at the prompt) to a lab that answers, measure what the probe saw
        (the outage None: it had not ended within watch_s), mend the lab."""
        ...

    def vrrp_window(self) -> tuple[float, float]:
        """When, after a master's link is cut, the lab's backup takes over by the protocol."""
        ...


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str       # the lesson's pass or fail words
    detail: str        # what was seen, in numbers (English and Korean alike)


@dataclass(frozen=True)
class Answers:
    """What the student gave: a value (numeric checks), a prediction in seconds (predict checks)."""

    value: float | None = None
    prediction: float | None = None


def run(check: Check, lab: LabView, lang: str, answers: Answers, quick: bool = False) -> Verdict:
    p = check.params
    runs = p.get("quick_runs", 1) if quick else p.get("runs", 1)
    watch = p.get("watch_s", 8.0)
    if check.kind == "state":
        ok, detail = state(p, lab.status())
    elif check.kind == "measure":
        ok, detail = measure(p, [lab.measure(p["fault"], watch) for _ in range(runs)])
    elif check.kind == "numeric":
        ok, detail = numeric(p, answers.value)
    else:
        if answers.prediction is None:
            return Verdict(False, _NO_PREDICTION(lang), "")
        window = lab.vrrp_window()
        outages = [lab.measure(p["fault"], watch).outage for _ in range(runs)]
        ok, detail = predicted(answers.prediction, window, outages, p.get("slack_s", 0.0))
    return Verdict(ok, (check.passed if ok else check.failed)(lang), detail)


_NO_PREDICTION = Words("먼저 예측을 기록하세요: `halab lesson predict 초`.",
                       "Record your prediction first: `halab lesson predict SECONDS`.")


def state(p: dict, status: dict) -> tuple[bool, str]:
    if "vip_holder" in p:
        holders = status["vip"]["claimed_by"]
        return holders == [p["vip_holder"]], f"VIP {status['vip']['address']} held by {', '.join(holders) or 'nobody'}"
    host, _, program = p["agent"].partition("/")
    row = next((a for a in status["agents"] if a["host"] == host and a["program"] == program), None)
    if row is None:
        return False, f"{host} runs no {program}"
    if "running" in p:
        return row["running"] == p["running"], f"{p['agent']} {'runs' if row['running'] else 'does not run'}"
    shown = row.get("state") or ""
    return p["state"] in re.findall(r"[\w-]+", shown), f"{p['agent']}: {shown or 'no state'}"


def measure(p: dict, runs: Sequence[Outcome]) -> tuple[bool, str]:
    """The budget held, or (recovers = false) no recovery; and, with moves_to, the service came back
    on that server (a fault that changed nothing passes no check)."""
    outages = [r.outage for r in runs]
    shown = ", ".join("never" if o is None else f"{o:.2f} s" for o in outages)
    if not p.get("recovers", True):
        return all(o is None for o in outages), f"outages: {shown} (watched {p.get('watch_s', 8.0):g} s)"
    if any(o is None for o in outages):
        return False, f"outages: {shown}; the service did not come back"
    moved = [r.server_after for r in runs]
    if "moves_to" in p and any(server != p["moves_to"] for server in moved):
        return False, f"outages: {shown}; answered after the fault by {', '.join(map(str, moved))}"
    statistic = p.get("statistic", "median")
    value = {"median": median, "p95": lambda xs: percentile(xs, 0.95), "max": max}[statistic](list(outages))
    assert value is not None
    return value <= p["budget_s"], f"{statistic} {value:.2f} s of {shown}; budget {p['budget_s']:g} s"


def numeric(p: dict, value: float | None) -> tuple[bool, str]:
    if value is None:
        return False, "no value given: `halab lesson check --value NUMBER`"
    unit = f" {p['unit']}" if p.get("unit") else ""
    return abs(value - p["expect"]) <= p["tolerance"], f"your answer: {value:g}{unit}"


def predicted(prediction: float, window: tuple[float, float], outages: Sequence[float | None],
              slack: float) -> tuple[bool, str]:
    """Graded on the reasoning, not on luck: the prediction must lie where the protocol puts the
    takeover (the window, with `slack` either side); the measurements are shown beside it, and the
    window only once the prediction is in it (else the next prediction would be a copy)."""
    low, high = window
    shown = ", ".join("never" if o is None else f"{o:.2f} s" for o in outages)
    if not low - slack <= prediction <= high + slack:
        return False, f"you predicted {prediction:g} s; measured {shown}"
    inside = sum(o is not None and low - slack <= o <= high + slack for o in outages)
    return True, (f"you predicted {prediction:g} s; the protocol says {low:.2f} to {high:.2f} s; measured {shown} "
                  f"({inside} of {len(outages)} within it)")
