"""A server with a real, finite capacity: `workers` requests at a time, each held for a fixed
`service` time (as a web server whose every request waits the same on its database), the rest
waiting in a bounded queue and dropped beyond it, as a full accept backlog drops them.

Its capacity is workers / service requests per second. Below it a request takes `service`;
past it the queue grows and so does the wait, until the queue is full and requests are lost.
The work is waiting, not CPU: two such servers on a two-core machine do not compete for cores,
so what a comparison of architectures shows is the architecture, not the machine.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable

Answer = Callable[[], None]


class Capacity:
    def __init__(self, workers: int, service: float, queue: int = 1024) -> None:
        if workers < 1 or service <= 0 or queue < 0:
            raise ValueError("workers >= 1, service > 0 and queue >= 0")
        self.workers, self.service, self.queue_limit = workers, service, queue
        self.waiting: deque[Answer] = deque()
        self.busy: list[tuple[float, int, Answer]] = []  # (when done, tie-break, answer)
        self._order = itertools.count()
        self.dropped = 0

    @property
    def per_second(self) -> float:
        return self.workers / self.service

    def submit(self, now: float, answer: Answer) -> bool:
        """Take a request (its answer is sent when served); False when the queue is full. What is
        due is answered first, so that a worker freed before `now` takes the waiting requests
        (which arrived before it was free) and not this one, which cannot start before `now`."""
        self.run_due(now)
        if len(self.busy) < self.workers:
            heapq.heappush(self.busy, (now + self.service, next(self._order), answer))
            return True
        if len(self.waiting) >= self.queue_limit:
            self.dropped += 1
            return False
        self.waiting.append(answer)
        return True

    def run_due(self, now: float) -> int:
        """Answer every request whose service has ended and start waiting ones; how many answered."""
        done = 0
        while self.busy and self.busy[0][0] <= now:
            finished, _, answer = heapq.heappop(self.busy)
            answer()
            done += 1
            if self.waiting:  # the freed worker takes the next request when the last one ended
                heapq.heappush(self.busy, (finished + self.service, next(self._order), self.waiting.popleft()))
        return done

    def next_due(self) -> float | None:
        return self.busy[0][0] if self.busy else None
