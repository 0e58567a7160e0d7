"""Where each node of a lab goes in the page's picture: in rows by distance from the clients, so
that every topology reads top to bottom the way its traffic flows (clients, their switch, the
servers or balancers behind it, the next switch, the tier behind that). Pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

WIDTH, ROW_HEIGHT, MARGIN = 1000, 110, 60


def rows(hosts: dict[str, str], links: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Nodes by their distance (in links) from the nearest client; nodes no client reaches come last."""
    nodes = set(hosts) | {n for link in links for n in link}
    near: dict[str, set[str]] = defaultdict(set)
    for a, b in links:
        near[a].add(b)
        near[b].add(a)
    depth = {n: 0 for n in nodes if hosts.get(n) == "client"}
    frontier = sorted(depth)
    while frontier:
        following = []
        for n in frontier:
            for m in sorted(near[n]):
                if m not in depth:
                    depth[m] = depth[n] + 1
                    following.append(m)
        frontier = following
    last = max(depth.values(), default=-1) + 1
    out: list[list[str]] = [[] for _ in range(last + 1)]
    for n in sorted(nodes, key=_natural):
        out[depth.get(n, last)].append(n)
    return [row for row in out if row]


def layout(hosts: dict[str, str], links: Iterable[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """(x, y) of each node's centre in a WIDTH-wide picture, each row spread evenly."""
    links = list(links)
    place = {}
    for r, row in enumerate(rows(hosts, links)):
        for i, node in enumerate(row):
            place[node] = (round((i + 1) * WIDTH / (len(row) + 1)), MARGIN + r * ROW_HEIGHT)
    return place


def _natural(name: str) -> tuple[str, int]:
    """backend2 before backend10."""
    stem = name.rstrip("0123456789")
    digits = name[len(stem):]
    return stem, int(digits) if digits else -1
