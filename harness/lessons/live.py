"""The lab a lesson's checks look at: the one that is up, reached through its control socket."""

from __future__ import annotations

import time
from dataclasses import asdict, fields, replace
from pathlib import Path

from ha.vrrp import config as vrrp_config
from harness import events, labfile, livemeasure, runpage
from harness.errors import HalabError
from harness.labinfo import NO_LAB, file_digest, running
from harness.livemeasure import LiveOutcome
from harness.measure import Outcome
from harness.probe import Request
from harness.report import master_down


class LiveLabView:
    def __init__(self, lab_file: Path | None = None) -> None:
        """`lab_file`: the lesson's; a lab of another file is refused (its checks would not apply)."""
        descriptor = running()
        if descriptor is None:
            raise HalabError(NO_LAB.problem, "`halab lesson start N` (or `halab lesson reset`) brings up the "
                                             "lesson's lab.")
        if lab_file is not None and Path(descriptor["lab_file"]).resolve() != lab_file.resolve():
            raise HalabError(f"The lab that is up ({descriptor['lab_file']}) is not this lesson's ({lab_file}).",
                             "`halab down`, then `halab lesson start N` brings up the lesson's lab.")
        self.socket = Path(descriptor["socket"])
        self.spec = labfile.load(Path(descriptor["lab_file"]))
        self.descriptor = descriptor

    def status(self) -> dict:
        return livemeasure.status(self.socket)

    def measure(self, fault: str, watch_s: float, whole: bool = False, expect: str | None = None) -> LiveOutcome:
        outcome = livemeasure.measure(self.socket, fault, watch_s, whole, expect)
        after = [e for e in self._events(outcome.fault_at, outcome.fault_at + watch_s + livemeasure.KNOWN_AFTER_S)
                 if e.at >= outcome.fault_at]
        return replace(outcome, reasons=tuple(f"{e.host} {e.subject}: {e.state} ({e.reason})" for e in after))

    def save_timeline(self, outcome: LiveOutcome, fault: str) -> Path | None:
        """An SVG of what the probe saw around the fault, with the agents' events on it, in the
        lab's run directory: attached to a failed check."""
        requests = outcome.seen
        if not requests:
            return None
        seen = [asdict(e) for e in self._events(requests[0].sent - 1, requests[-1].sent + 1)]
        plain = {f.name: getattr(outcome, f.name) for f in fields(Outcome)}
        result = {"fault": {"at": outcome.fault_at, "kind": fault, "target": ""}, "options": {}, "adverts": None,
                  "timeline": [asdict(r) for r in requests], "outcome": plain, "agent_events": seen}
        path = Path(self.descriptor["run_dir"]) / f"check-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        path.write_text(runpage.timeline_svg(result))
        return path

    def _events(self, first: float, last: float) -> list[events.Event]:
        """The lab's agents' events between two times, in order."""
        found = [e for log in self.descriptor.get("event_logs", []) if Path(log["path"]).exists()
                 for e in events.read(Path(log["path"]), log["host"]) if first <= e.at <= last]
        return sorted(found, key=lambda e: e.at)

    def configs(self) -> dict[str, dict]:
        """Each agent's configuration as the lab runs it (recorded when it came up), by "HOST/PROGRAM"."""
        return self.descriptor.get("configs", {})

    def lab_changed(self) -> bool:
        """Whether the lab file was changed after the lab came up (then what runs is not what it says);
        False when the lab did not record it."""
        recorded = self.descriptor.get("lab_digest")
        return recorded is not None and file_digest(Path(self.descriptor["lab_file"])) != recorded

    def diagnose(self) -> str:
        return livemeasure.diagnosis(self.socket)

    def recent(self, seconds: float) -> list[Request]:
        return livemeasure.recent(self.socket, seconds)

    def vrrp_window(self) -> tuple[float, float]:
        """From the lab's VRRP configuration: the backup that takes over (the highest priority after
        the master's) does so Master_Down_Interval after the last advert it heard, which left up to
        one advert_int before the fault."""
        where = str(self.spec.source)
        instances = sorted((vrrp_config.parse(agent.config, where).instances[0] for agent in self.spec.agents
                            if agent.program in labfile.VRRP_PROGRAMS), key=lambda i: -i.priority)
        if len(instances) < 2:
            raise HalabError("This lesson's lab has no VRRP backup.", "A predict check needs a master and a backup.")
        backup = instances[1]
        down = master_down(backup.advert_int, backup.priority)
        return down - backup.advert_int, down
