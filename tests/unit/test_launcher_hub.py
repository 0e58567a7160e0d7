"""A bug in one of the controller's event handlers is logged, and the next event still runs."""

from __future__ import annotations

import threading

from os_ken.base import app_manager
from os_ken.controller import event
from os_ken.controller.handler import register_instance, set_ev_cls
from os_ken.lib import hub

from controller.launcher import keep_event_loops_alive


class Tick(event.EventBase):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n


class Fragile(app_manager.OSKenApp):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[int] = []
        self.done = threading.Event()

    @set_ev_cls(Tick)
    def on_tick(self, ev: Tick) -> None:
        self.seen.append(ev.n)
        if ev.n == 1:
            raise TypeError("a bug in a handler")
        self.done.set()


def test_an_exception_in_a_handler_does_not_end_the_event_loop(caplog):
    keep_event_loops_alive()
    assert hub.TaskExit is not Exception and not isinstance(TypeError(), hub.TaskExit)
    app = Fragile()
    register_instance(app)
    app.start()
    try:
        app._send_event(Tick(1), None)
        app._send_event(Tick(2), None)
        assert app.done.wait(5), app.seen
    finally:
        app.stop()
    assert app.seen == [1, 2]
    assert "a bug in a handler" in caplog.text
