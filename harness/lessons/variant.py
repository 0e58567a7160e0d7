"""A student's own variant of a lesson's lab (`halab lesson start N --student ID`): the same lab
with numbers of the student's own — the VRRP virtual_router_id and priorities, the order of the
priorities kept — so that a predicted failover time or a VRID read off the lab cannot be copied
from a neighbour. Seeded by the student id and the lesson: the same student gets the same lab
again (`reset`, another day), the teacher can make it too.

The shared VIP, 10.0.0.100, becomes an address of the student's own in the same network
(10.0.0.20 to .99, where no lab host is), and the probe follows it. Only what the lessons' checks
do not name is varied: hosts, their addresses and timers stay, so every check, budget and
protocol window holds (Master_Down_Interval at advert_int 1 s stays within 3.4 to 3.8 s for a
backup priority of 50 to 149).

A troubleshooting lesson (`misconfigure = [...]` in its lesson.toml) also gives the backup one of
its mistakes, drawn the same way: each student has a fault of their own to find with
`halab diagnose` and to fix in the lab file."""

from __future__ import annotations

import hashlib
import random
import tomllib
from collections.abc import Callable
from pathlib import Path

import tomli_w

from harness.labfile import VRRP_PROGRAMS

#: The master's priority is drawn from the first range, each lower one from the second (255 is the
#: address owner's, which would skip the election; 0 means leaving).
TOP_PRIORITIES = range(150, 255)
LOWER_PRIORITIES = range(50, 150)
#: The VIP every shared lab uses, and the last octets a student's may have instead (below the
#: clients' .101 and up, above the servers' .1 and .2).
SHARED_VIP = "10.0.0.100/24"
OWN_VIP_OCTETS = range(20, 100)

#: The mistakes a troubleshooting lesson may give its lab's backup (its VRRP instance; the master's
#: beside it): each is one a person makes, each breaks the failover, and `halab diagnose` names each.
MISTAKES: dict[str, Callable[[dict, dict], None]] = {
    # another router's VRID: each side drops the other's adverts, and both become master
    "vrid": lambda backup, master: backup.update(virtual_router_id=master["virtual_router_id"] % 255 + 1),
    # a unicast peer with a typo: the backup hears only that address, and sends to it: two masters again
    "unicast_peer": lambda backup, master: backup.update(unicast_peer=["10.0.0.9"]),
    # a check of a gateway the lab does not have: the backup stays in FAULT and never takes over
    "track_script": lambda backup, master: backup.update(
        track_script=[{"script": "ping -c 1 -W 1 10.0.0.254", "interval": 1.0}]),
}

def rng(student: str, number: int) -> random.Random:
    digest = hashlib.sha256(f"halab lesson {number} student {student}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def make(lab: Path, student: str, number: int, mistakes: tuple[str, ...] = ()) -> str | None:
    """The variant lab file's text, or None when the lab has nothing to vary (no VRRP instance
    written in the lab file itself, or a configuration kept in a file of its own). With `mistakes`,
    the backup has one of them (the header does not say which)."""
    raw = tomllib.loads(lab.read_text())
    if any(isinstance(agent.get("config"), str) for agent in raw.get("agent", [])):
        return None  # a configuration file named relative to the lab would not be found from the copy
    instances = [inst for agent in raw.get("agent", []) if agent.get("program") in VRRP_PROGRAMS
                 and isinstance(agent.get("config"), dict) for inst in agent["config"].get("vrrp_instance", [])]
    if len(instances) < (2 if mistakes else 1):  # a mistake is the backup's, beside a master
        return None
    draw = rng(student, number)
    vrid = draw.randrange(1, 256)
    ranked = sorted(instances, key=lambda i: -i["priority"])
    priorities = [draw.choice(TOP_PRIORITIES), *sorted(draw.sample(LOWER_PRIORITIES, len(ranked) - 1), reverse=True)]
    for inst, priority in zip(ranked, priorities, strict=True):
        inst["virtual_router_id"], inst["priority"] = vrid, priority
    vip = _own_vip(raw, instances, draw.choice(OWN_VIP_OCTETS))
    if mistakes:
        MISTAKES[draw.choice(mistakes)](ranked[-1], ranked[0])
    told = ("and one mistake to find" if mistakes else
            f"(virtual_router_id {vrid}, priorities {', '.join(map(str, priorities))}{vip})")
    header = (f"# Lesson {number}'s lab for student {student}: {lab.name} with the student's own VRRP numbers\n"
              f"# {told}. Written by `halab lesson start {number} --student {student}`.\n")
    return header + tomli_w.dumps(raw)


def _own_vip(raw: dict, instances: list[dict], octet: int) -> str:
    """Give the instances that hold the shared VIP the student's own, and point the probe at it
    (when it asked for the VIP); the words for the header ("" when the lab uses another address)."""
    holding = [inst for inst in instances if SHARED_VIP in inst.get("virtual_ipaddress", [])]
    if not holding:
        return ""
    own = f"10.0.0.{octet}"
    for inst in holding:
        inst["virtual_ipaddress"] = [f"{own}/24" if a == SHARED_VIP else a for a in inst["virtual_ipaddress"]]
    probe = raw.setdefault("probe", {})
    if probe.get("target", "vip") in ("vip", SHARED_VIP.split("/")[0]):
        probe["target"] = own
    return f", VIP {own}"


def path(progress_dir: Path, student: str, number: int) -> Path:
    return progress_dir / "labs" / f"lesson-{number}-{student}.toml"
