"""The verbs' grammar, one for the prompt, `halab fault|vip|status|probe|capture|diagnose` and the
live view's buttons:

    fault link-cut HOST [SWITCH] [--for S]     fault restore [HOST [SWITCH]]   (no host: mend everything)
    fault partition A[,A..] B[,B..] [--for S]  fault heal
    fault kill|term|stop|cont HOST PROGRAM [--for S]
    fault loss HOST PERCENT [SWITCH] [--for S] fault flap HOST [SWITCH] [--period S] [--count N]
    fault crash HOST [--for S]
    vip [--json]      status [--json]      probe start|stop      capture HOST [SWITCH] | capture stop
    diagnose [--json]   why it did not fail over (harness/diagnose.py)

Light on imports (argparse and signal): a verb typed in a shell is checked here before it is sent
to the lab (harness.verbclient), and the lab runs it (harness.verbs).
"""

from __future__ import annotations

import argparse
import signal

#: What `fault kill|term|stop|cont HOST PROGRAM` sends.
SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "stop": signal.SIGSTOP, "cont": signal.SIGCONT}
VERBS = ("fault", "vip", "status", "probe", "capture", "diagnose")
FAULTS = ("link-cut", "restore", "partition", "heal", *SIGNALS, "loss", "flap", "crash")
MAX_FOR_S = 3600.0


class VerbError(Exception):
    """A verb line that does not parse: the message is argparse's, usage included."""


class VerbHelp(VerbError):  # noqa: N818 (asking for help is no error)
    """`--help`: the message is the help, and asking for it is no error."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise VerbError(f"{self.prog}: {message}\nusage: {self.format_usage().removeprefix('usage: ').strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise VerbHelp(message or self.format_help())


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_FOR_S:
        raise argparse.ArgumentTypeError(f"{text}: choose more than 0 and at most {MAX_FOR_S:g} seconds")
    return value


def _percent(text: str) -> float:
    value = float(text.removesuffix("%"))
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text}: choose 0 to 100 %")
    return value


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="halab", add_help=False)
    verbs = top.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    fault = verbs.add_parser("fault", help="break something, or mend it")
    kinds = fault.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    for name, help_ in (("link-cut", "take a host's link down"), ("crash", "a host loses power")):
        k = kinds.add_parser(name, help=help_)
        k.add_argument("host")
        if name == "link-cut":
            k.add_argument("switch", nargs="?")
        k.add_argument("--for", dest="duration", type=_seconds, help="mend it after this many seconds")
    r = kinds.add_parser("restore", help="mend a link, or with no host every standing fault")
    r.add_argument("host", nargs="?")
    r.add_argument("switch", nargs="?")
    p = kinds.add_parser("partition", help="two groups of hosts stop hearing each other")
    p.add_argument("side_a", help="hosts, comma-separated")
    p.add_argument("side_b", help="hosts, comma-separated")
    p.add_argument("--for", dest="duration", type=_seconds)
    kinds.add_parser("heal", help="end the partition")
    for action in SIGNALS:
        s = kinds.add_parser(action, help=f"SIG{SIGNALS[action].name[3:]} to an agent")
        s.add_argument("host")
        s.add_argument("program")
        s.add_argument("--for", dest="duration", type=_seconds)
    loss = kinds.add_parser("loss", help="drop a share of the frames on a host's link, each way (0: none)")
    loss.add_argument("host")
    loss.add_argument("percent", type=_percent)
    loss.add_argument("switch", nargs="?")
    loss.add_argument("--for", dest="duration", type=_seconds)
    flap = kinds.add_parser("flap", help="cut and restore a link again and again")
    flap.add_argument("host")
    flap.add_argument("switch", nargs="?")
    flap.add_argument("--period", type=float, default=0.5)
    flap.add_argument("--count", type=int, default=10)
    for name in ("vip", "status"):
        v = verbs.add_parser(name, help=f"the {name} report")
        v.add_argument("--json", action="store_true")
    d = verbs.add_parser("diagnose", help="why it did not fail over: configurations, counters, ARP, the pool")
    d.add_argument("--json", action="store_true", help="the facts read and the findings")
    pr = verbs.add_parser("probe", help="the probe `watch` follows")
    pr.add_argument("action", choices=("start", "stop"))
    cap = verbs.add_parser("capture", help="tcpdump a host's link to a pcap file in the run directory")
    cap.add_argument("host", help="a host, or `stop`")
    cap.add_argument("switch", nargs="?")
    return top
