"""The checks of a lesson's stages, against a running lab: its state, its behaviour under a fault
(measured on the lab itself), a number the student worked out, a prediction then the measurement.

The lab is reached through `LabView` (the real one, harness.lessons.live, talks to the lab's
control socket and reads its probe); this module is the grading arithmetic and the words.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import HalabError
from harness.labfile import lookup
from harness.lessons import runs as student_runs
from harness.lessons.model import Check, Words
from harness.livemeasure import LiveOutcome
from harness.measure import median, percentile
from harness.probe import Request


class LabView(Protocol):
    def status(self) -> dict: ...

    def measure(self, fault: str, watch_s: float, whole: bool = False, expect: str | None = None) -> LiveOutcome:
        """Apply the fault (as typed at the prompt) to a lab that answers, measure what the probe saw
        (the outage None: it had not ended within watch_s; `whole`: watch all of watch_s; `expect`:
        the server that should answer at the end), mend the lab."""
        ...

    def vrrp_window(self) -> tuple[float, float]:
        """When, after a master's link is cut, the lab's backup takes over by the protocol."""
        ...

    def recent(self, seconds: float) -> list[Request]:
        """The probe's requests of the last `seconds` whose fate is known."""
        ...

    def save_timeline(self, outcome: LiveOutcome, fault: str) -> Path | None:
        """A picture of what the probe saw around the fault (None: nothing to draw), for a failed check."""
        ...

    def diagnose(self) -> str:
        """`halab diagnose`'s findings on the lab now ("" when it finds nothing wrong)."""
        ...

    def configs(self) -> dict[str, dict]:
        """Each agent's configuration as the lab runs it ("server2/halab-vrrp": its table, a VRRP
        agent's with its defaults filled in)."""
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
    runs_dir: Path = Path("runs")  # where the student's `halab run` and `halab compare` wrote


def run(check: Check, lab: LabView, lang: str, answers: Answers, quick: bool = False) -> Verdict:
    p = check.params
    runs = p.get("quick_runs", 1) if quick else p.get("runs", 1)
    watch = p.get("watch_s", 8.0)
    if check.kind == "state" and "config" in p:
        ok, detail = config(p, lab.configs())
    elif check.kind == "state":
        ok, detail = state(p, lab.status())
    elif check.kind == "measure":
        whole = p.get("figure") == "last_failure" or p.get("whole", False)
        measured = [lab.measure(p["fault"], watch, whole=whole, expect=p.get("moves_to")) for _ in range(runs)]
        ok, detail = measure(p, measured)
        if not ok:
            detail += _failed_measure(lab, p, measured)
    elif check.kind == "spread":
        ok, detail = spread(p, lab.recent(p.get("seconds", 3.0)))
    elif check.kind == "numeric":
        ok, detail = numeric(p, answers.value)
    elif check.kind == "result":
        ok, detail = result(p, student_runs.newest(answers.runs_dir, p["scenario"], p.get("options", {})),
                            answers.value, answers.runs_dir)
    else:
        if answers.prediction is None:
            return Verdict(False, _NO_PREDICTION(lang), "")
        window = lab.vrrp_window()
        outages = [lab.measure(p["fault"], watch).outage for _ in range(runs)]
        ok, detail = predicted(answers.prediction, window, outages, p.get("slack_s", 0.0))
    if not ok and check.kind in ("state", "spread") and "config" not in p:  # the lab misbehaves now: say why
        detail += _diagnosis(_quietly(lab.diagnose, ""))
    return Verdict(ok, (check.passed if ok else check.failed)(lang), detail)


def _failed_measure(lab: LabView, p: dict, measured: Sequence[LiveOutcome]) -> str:
    """What a failed measurement attaches: the timeline of its worst run, and what `halab diagnose`
    found while the service had not come back (the lab is mended by now)."""
    worst = max(measured, key=lambda r: float("inf") if r.outage is None else r.outage)
    timeline = _quietly(lambda: lab.save_timeline(worst, p["fault"]), None)
    found = next((r.diagnosis for r in measured if r.diagnosis), "")
    return (f"\n    timeline of the worst run: {timeline}" if timeline else "") + _diagnosis(found)


def _diagnosis(found: str) -> str:
    return "\n    halab diagnose:\n" + textwrap.indent(found, "      ") if found else ""


def _quietly(call, default):
    """What the check adds to a failure is a help, not the verdict: a lab that cannot give it gives none."""
    try:
        return call()
    except (HalabError, OSError):
        return default


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


#: A key holding one of these is a secret: its value is never shown.
SECRET_WORDS = ("secret", "pass")


def config(p: dict, configs: dict[str, dict]) -> tuple[bool, str]:
    """A key of an agent's configuration as the lab runs it: equal to a value (true is no 1), the
    same as another agent's, or within bounds."""
    key = p["key"]
    value = lookup(configs, p["config"], key)
    seen = f"{p['config']}: {key} = {_shown(key, value)}"
    if value is None:
        return False, seen
    if "equals" in p:
        return _same(value, p["equals"]), seen
    if "same_as" in p:
        other = lookup(configs, p["same_as"], key)
        return other is not None and _same(value, other), f"{seen}; {p['same_as']}: {_shown(key, other)}"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and p.get("at_least", float("-inf")) <= value <= p.get("at_most", float("inf")), seen


def _same(a: object, b: object) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _shown(key: str, value: object) -> str:
    """The value as the student may see it: a secret's, at the key or anywhere inside it, hidden."""
    if value is None:
        return "not set"
    return HIDDEN if _secret(key) else repr(_without_secrets(value))


HIDDEN = "(a secret, not shown)"


def _secret(key: str) -> bool:
    return any(word in key.rsplit(".", 1)[-1] for word in SECRET_WORDS)


def _without_secrets(value: object) -> object:
    if isinstance(value, dict):
        return {k: HIDDEN if _secret(k) else _without_secrets(v) for k, v in value.items()}
    return [_without_secrets(v) for v in value] if isinstance(value, list) else value


def measure(p: dict, runs: Sequence[LiveOutcome]) -> tuple[bool, str]:
    """The budget held, or (recovers = false) no recovery; with moves_to, the service came back on
    that server, and vip_moves_to, the VIP on that host (a fault that changed nothing passes no
    check); with `reason`, an agent said so after the fault."""
    outages = [r.outage for r in runs]
    shown = ", ".join("never" if o is None else f"{o:.2f} s" for o in outages)
    if not p.get("recovers", True):
        return all(o is None for o in outages), f"outages: {shown} (watched {p.get('watch_s', 8.0):g} s)"
    if any(o is None for o in outages):
        return False, f"outages: {shown}; the service did not come back"
    # who answers at the end (the outage's end may be an old server's answer: a takeover with no
    # gap, as fencing before the VIP moves can make it, has no outage of its own)
    moved = [r.answered_after[-1] if r.answered_after else r.server_after for r in runs]
    if "moves_to" in p and any(server != p["moves_to"] for server in moved):
        return False, f"outages: {shown}; answered after the fault by {', '.join(map(str, moved))}"
    holders = [r.holders_after for r in runs]
    if "vip_moves_to" in p and any(h != (p["vip_moves_to"],) for h in holders):
        shown_holders = "; ".join(", ".join(h) or "nobody" for h in holders)
        return False, f"outages: {shown}; the VIP was held afterwards by {shown_holders}"
    turns = next((r.answered_after for r in runs if len(r.answered_after) > 2), None)
    if "moves_to" in p and turns:  # the old server, then the new one, is a failover; more is two at once
        return False, f"outages: {shown}; after the fault {', '.join(turns)} answered in turn: two servers at once"
    if "reason" in p and not all(any(p["reason"] in said for said in r.reasons) for r in runs):
        return False, f"outages: {shown}; no agent said \"{p['reason']}\" after the fault"
    statistic = p.get("statistic", "median")
    if p.get("figure") == "last_failure":  # nothing failed: the service never missed a request
        target = fault_host(p["fault"])
        if target is not None and any(target not in r.answered_before for r in runs):
            return False, f"the fault changed nothing: {target} was not answering before it"
        figures = [r.last_failure_after or 0.0 for r in runs]
        shown = ", ".join(f"{f:.2f} s" for f in figures)
        what = "last failure after the fault"
    else:
        figures, what = list(outages), "outage"
    value = {"median": median, "p95": lambda xs: percentile(xs, 0.95), "max": max}[statistic](figures)
    assert value is not None
    return value <= p["budget_s"], f"{what}: {statistic} {value:.2f} s of {shown}; budget {p['budget_s']:g} s"


def spread(p: dict, requests: Sequence[Request]) -> tuple[bool, str]:
    """Exactly `servers` servers answered lately, none more than `max_share` of the answers, and
    nothing was lost."""
    answered = Counter(r.server for r in requests if r.ok)
    total, lost = sum(answered.values()), sum(not r.ok for r in requests)
    if not total:
        return False, f"no answer in the last {p.get('seconds', 3.0):g} s ({lost} lost)"
    shares = {server: n / total for server, n in sorted(answered.items())}
    shown = ", ".join(f"{server} {share * 100:.0f} %" for server, share in shares.items())
    ok = len(shares) == p["servers"] and max(shares.values()) <= p.get("max_share", 1.0) and not lost
    return ok, f"{shown} of {total} answers, {lost} lost"


def result(p: dict, found: student_runs.Found | None, value: float | None, runs_dir: Path) -> tuple[bool, str]:
    """The newest run of the scenario exists; its field (times scale; a list: how many items) lies
    within at_least and at_most; with a tolerance, the student's value is that figure."""
    options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in p.get("options", {}).items())
    wanted = f"`halab {'' if p['scenario'] == 'compare' else 'run '}{p['scenario']}{' ' + options if options else ''}`"
    if found is None:
        return False, f"no run of {wanted} in {runs_dir}"
    if not p.get("field"):
        return True, f"{found.file}"
    figure = student_runs.field(found.data, p["field"])
    if isinstance(figure, list):  # a list counts its items (the acknowledged writes lost, ...)
        figure = len(figure)
    if isinstance(figure, bool) or not isinstance(figure, int | float):
        return False, f"{found.file}: {p['field']} is {figure!r}, not a number; run {wanted} again"
    figure *= p.get("scale", 1.0)
    unit = f" {p['unit']}" if p.get("unit") else ""
    seen = f"{found.file}: {p['field']} = {figure:g}{unit}"
    if not p.get("at_least", float("-inf")) <= figure <= p.get("at_most", float("inf")):
        return False, seen
    if "tolerance" not in p:
        return True, seen
    if value is None:
        return False, "no value given: `halab lesson check --value NUMBER`"
    if abs(value - figure) > p["tolerance"]:
        return False, f"your answer: {value:g}{unit}; it is not what {found.file} says"
    return True, f"{seen}; your answer: {value:g}{unit}"


def fault_host(fault: str) -> str | None:
    """The host a fault typed at the prompt hits ("kill backend1 responder": backend1); None for a
    partition."""
    words = fault.split()
    return words[1] if len(words) > 1 and words[0] not in ("partition", "heal", "restore") else None


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
