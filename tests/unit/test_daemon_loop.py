"""The agents' loop on a real process that is stopped and continued (SIGSTOP, SIGCONT)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

CHILD = """
import socket, time
from ha import daemon

class Agent(daemon.Agent):
    kind = source = "loop-test"

    def __init__(self):
        super().__init__(None)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.watch(self.sock, "sock")
        self.order, self.due = [], time.monotonic() + 0.3

    def deadlines(self):
        return [self.due]

    def ready(self, data, now):
        self.sock.recv(64)
        self.order.append("packet")

    def tick(self, now):
        if now >= self.due:
            self.order.append("timer")
            self.stopping = True

agent = Agent()
print(agent.sock.getsockname()[1], flush=True)
agent.run()
print(",".join(agent.order), flush=True)
"""


def test_what_arrived_while_the_agent_was_stopped_is_read_before_its_timers_fire(tmp_path):
    """A backup frozen past its Master_Down timer must first read the adverts that came in
    meanwhile: firing the timer first made it take over a master it had heard all along.
    (A select interrupted by the stop returns nothing once its timeout has passed.)"""
    env = {**os.environ, "HALAB_STATE_DIR": str(tmp_path / "state")}  # its status file: not in /run/halab
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(child.stdout.readline())
        time.sleep(0.05)  # in its select, waiting for the timer
        child.send_signal(signal.SIGSTOP)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"advert", ("127.0.0.1", port))
        time.sleep(0.6)  # past the timer
        child.send_signal(signal.SIGCONT)
        assert child.stdout.readline().strip() == "packet,timer"
    finally:
        child.kill()
        child.wait()
