"""The lab a lesson's checks look at: the one that is up, reached through its control socket."""

from __future__ import annotations

import json
from pathlib import Path

from harness import labfile, livemeasure
from harness.errors import HalabError
from harness.labinfo import NO_LAB, running


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

    def status(self) -> dict:
        return json.loads(livemeasure.ask(self.socket, ["status", "--json"]))

    def outage(self, fault: str, watch_s: float) -> float | None:
        return livemeasure.outage(self.socket, fault, watch_s)

    def vrrp_window(self) -> tuple[float, float]:
        """From the lab's VRRP configuration: the backup (lowest priority) takes over
        Master_Down_Interval = 3 x advert_int + (256 - priority) / 256 x advert_int after the last
        advert it heard, which left up to one advert_int before the fault."""
        instances = [agent.config["vrrp_instance"][0] for agent in self.spec.agents
                     if agent.program in labfile.VRRP_PROGRAMS]
        if not instances:
            raise HalabError("This lesson's lab runs no VRRP agent.", "A predict check needs one.")
        backup = min(instances, key=lambda i: i["priority"])
        advert = backup.get("advert_int", 1.0)
        down = 3 * advert + (256 - backup["priority"]) / 256 * advert
        return down - advert, down
