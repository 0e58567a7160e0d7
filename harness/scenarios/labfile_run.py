"""Any lab file, any fault: `halab run -f lab.toml --fault "link-cut server1"`.

The lab comes up as `halab up -f` brings it up, the probe runs from the file's [probe] host
towards its target, and the fault is a verb as typed at the prompt (`fault ...` without the word
`fault`); --for heals it. What the client saw is recorded like any scenario's run.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from harness import labfile, verbgrammar, verbs
from harness.errors import HalabError
from harness.livelab import LiveLab
from harness.report import RunRecord
from harness.scenarios.common import ProbeOptions, ProbeRun, Progress, Scenario, option, probe_after, record

#: Verbs that mend rather than break: not a fault to measure.
NOT_FAULTS = ("restore", "heal", "cont")


@dataclass(frozen=True)
class LabFileOptions(ProbeOptions):
    file: str | None = option(None, "the lab file (what `halab up -f` takes)", flag="-f")
    fault: str | None = option(None, 'the fault, as at the prompt: e.g. "link-cut server1", "partition node1 node2"')
    proto: str = option("lab", "probe protocol (default: the lab file's)", choices=("lab", "udp", "tcp"))
    rate: float = option(0.0, "probe requests per second (default: the lab file's)")

    def __post_init__(self) -> None:
        if not self.file:
            raise HalabError("`halab run -f` needs a lab file.", 'For example `halab run -f labs/cluster.toml '
                             '--fault "partition node1 node2"`.')
        spec = labfile.load(Path(self.file))
        object.__setattr__(self, "proto", spec.probe.proto if self.proto == "lab" else self.proto)
        object.__setattr__(self, "rate", self.rate or spec.probe.rate)
        super().__post_init__()
        argv = self.fault_argv()
        try:
            args = verbgrammar.parser().parse_args(argv)
        except verbgrammar.VerbError as exc:
            raise HalabError(f"--fault {self.fault!r}: {exc}", "Give a fault as at the prompt.") from None
        if args.kind in NOT_FAULTS:
            raise HalabError(f"--fault {args.kind} mends; it breaks nothing to measure.",
                             "Choose a fault: link-cut, crash, partition, loss, flap, kill, term, stop.")

    def fault_argv(self) -> list[str]:
        try:
            argv = ["fault", *shlex.split(self.fault or "")]
        except ValueError as exc:
            raise HalabError(f"--fault {self.fault!r}: {exc}.", "Check its quotes.") from None
        if len(argv) == 1:
            raise HalabError("`halab run -f` needs --fault.", 'For example --fault "link-cut server1".')
        return argv + (["--for", f"{self.lasting:g}"] if self.lasting is not None else [])

    @property
    def probe_after(self) -> float:
        return probe_after(self, 8.0)


def run(opts: LabFileOptions, run_dir: Path, progress: Progress = lambda _m: None) -> RunRecord:
    assert opts.file is not None
    spec = labfile.load(Path(opts.file))
    live = LiveLab(spec, run_dir)
    live.start(progress)
    try:
        target = live.probe_target()
        progress(f"probing {target} from {spec.probe.source}")
        client = ProbeRun(live.lab, spec.probe.source, target, opts, opts.before + opts.probe_after)
        time.sleep(opts.before)
        progress(f"injecting {opts.fault}")
        assert live.faults is not None
        rc, said = verbs.execute(live, opts.fault_argv())
        if rc != 0:
            raise HalabError(f"--fault {opts.fault!r}: {said}", "Give a fault that this lab has.")
        fault = live.faults.events[-1]
        requests = client.requests()
        events = [e for d in live.daemons for e in d.events()]
        if live.lab.controller is not None:
            events += live.lab.controller.events()
    finally:
        live.stop()
    return record("lab-file", opts, fault, requests, events, run_dir)


SCENARIO = Scenario("lab-file", "any lab file (-f) and any fault, as typed at the prompt (--fault)", LabFileOptions,
                    run)
