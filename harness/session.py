"""A lab that outlives one command: `halab up` (foreground or --detach), `ls`, `exec`, `cli`, `down`.

In the foreground, `up` holds the lab and its prompt in this process, and `exit` tears it down.
With --detach, the same process runs inside a tmux session of halab's own (`tmux -L halab`), so
that `halab cli` can attach to the real prompt from any terminal and detach again; `halab down`
asks the lab to stop through its control socket, and if its process was killed, removes what it
left (the same undo as `halab clean`). Either way the lab serves its control socket.
`halab exec` lives in harness.labinfo, light enough to start fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from ha.statusfile import state_root
from harness import about, cleanup, control, preflight
from harness.errors import HalabError
from harness.labfile import LabSpec
from harness.labinfo import NO_LAB, control_socket, descriptor_path, read_descriptor, running
from harness.livelab import LiveLab
from harness.procs import is_same_process
from harness.runstate import LabLock
from harness.web import command as web
from harness.web.command import ViewOptions

TMUX = ["tmux", "-L", "halab"]
SESSION = "lab"
UP_TIMEOUT_S = 180.0
DOWN_TIMEOUT_S = 60.0
#: Where a background `up` leaves its error for the command that started it (root-only directory).
UP_ERROR = "up-error.txt"

console = Console(stderr=True, highlight=False)


def refuse_second() -> None:
    d = running()
    if d is not None:
        raise HalabError(f"A halab lab is already running: {d['topology']} since "
                         f"{time.strftime('%H:%M:%S', time.localtime(d['started']))} (pid {d['pid']}).",
                         "Stop it with `sudo halab down`, or enter it with `sudo halab cli`.")


def up(spec: LabSpec, run_dir: Path, hold: bool = False, view: ViewOptions | None = None) -> int:
    """Bring the lab up here and give the prompt; `hold`: we are the background lab inside tmux;
    `view`: serve the live view too (its port is taken before the lab starts, so a port in use
    costs nothing)."""
    from harness.shell import LabCLI  # Mininet's CLI: only where a prompt runs

    preflight.require_root()  # the rest of the checks come with the lab's start
    refuse_second()
    live = LiveLab(spec, run_dir, mode="detached" if hold else "foreground")
    sock = None
    try:
        sock = web.bind(view.address, view.port, "--web-port") if view else None
        with console.status("starting") as status:
            live.start(lambda m: status.update(m))
    except HalabError as exc:
        if sock is not None:
            sock.close()
        if hold:
            _leave_error(exc)
        raise
    if view is not None:
        web.forget_url()  # a killed view's: `up --detach` must not show it as ours
    server = control.ControlServer(live, control_socket(), on_down=_stop_myself).start()
    shown = None
    try:
        if sock is not None and view is not None:
            shown = web.View(sock, view.allow_faults, run_dir / "web.log")
            console.print(f"live view: {shown.url}" + ("  (the part after # is the token of the fault buttons)"
                                                       if view.allow_faults else ""), soft_wrap=True)
        report = live.vip_report()
        console.print(f"[bold]{spec.topology}[/] lab is up ({spec.source}): {report['address']} answers from "
                      f"{report['answers']}. Type [bold]help[/] for the verbs; "
                      + ("[bold]exit[/] leaves it running, [bold]down[/] stops it." if hold else
                         "[bold]exit[/] tears it down."), soft_wrap=True)
        LabCLI(live, detached=hold)  # returns on `down`, or on `exit` in the foreground
    finally:
        try:
            if shown is not None:
                shown.stop()
            server.close()
        finally:
            live.stop()
            about.give_to_sudo_user(run_dir)
    console.print("The lab is down; nothing of it is left.")
    return 0


def _stop_myself() -> None:
    """`halab down` from another shell: unwind the prompt as SIGTERM does (the lab tears down)."""
    os.kill(os.getpid(), signal.SIGTERM)


def _leave_error(exc: HalabError) -> None:
    path = state_root() / UP_ERROR
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{exc.problem}\n{exc.fix}\n")


def up_detached(argv: list[str], view: ViewOptions | None = None) -> int:
    """Start `halab up ARGV --hold` in halab's tmux session and wait until its lab answers (and
    its live view, with `view`)."""
    preflight.require_root()
    refuse_second()
    subprocess.run([*TMUX, "kill-session", "-t", SESSION], capture_output=True, check=False)  # a dead lab's pane
    (state_root() / UP_ERROR).unlink(missing_ok=True)
    env = [f"{k}={v}" for k, v in os.environ.items() if k.startswith("HALAB_") or k in ("PATH", "HOME")]
    command = [sys.executable, "-m", "harness.cli", "up", *argv, "--hold"]
    subprocess.run([*TMUX, "new-session", "-d", "-s", SESSION, "-x", "160", "-y", "48", "-c", os.getcwd(),
                    *(x for e in env for x in ("-e", e)), *command], check=True)
    deadline = time.monotonic() + UP_TIMEOUT_S
    with console.status("starting the lab in the background"):
        while time.monotonic() < deadline:
            d = running()
            if d is not None:
                try:
                    if control.request(Path(d["socket"]), ["ping"], timeout=5)[0] == 0:
                        console.print(f"[bold]{d['topology']}[/] lab is up in the background (pid {d['pid']}): "
                                      "`sudo halab cli` enters it, `sudo halab down` stops it.", soft_wrap=True)
                        if view is not None:
                            console.print(f"live view: {web.wait_for_url(deadline)}", soft_wrap=True)
                        return 0
                except HalabError:
                    pass
            if not _tmux_has_session():
                break
            time.sleep(0.1)
    error = state_root() / UP_ERROR
    if error.exists():
        problem, _, fix = error.read_text().partition("\n")
        error.unlink()
        raise HalabError(problem, fix.strip())
    down()
    raise HalabError(f"The lab did not come up within {UP_TIMEOUT_S:.0f} s.", "Run `sudo halab up` without "
                     "--detach to see what happens.")


def _tmux_has_session() -> bool:
    return subprocess.run([*TMUX, "has-session", "-t", SESSION], capture_output=True, check=False).returncode == 0


def attach() -> int:
    d = running()
    if d is None:
        raise NO_LAB
    if d["mode"] != "detached":
        raise HalabError(f"The lab runs in the foreground of another terminal (pid {d['pid']}); its prompt is there.",
                         "Use `halab fault|vip|status` from here, or start labs with `halab up ... --detach`.")
    if not sys.stdin.isatty():
        raise HalabError("`halab cli` needs a terminal.", "Run it in a terminal, or use `halab fault|vip|status`.")
    env = {**os.environ, "TMUX": ""}  # inside the user's own tmux too
    os.execvpe(TMUX[0], [*TMUX, "attach-session", "-t", SESSION], env)


def ls(as_json: bool = False) -> int:
    d = read_descriptor()
    if d is None:
        print("no lab is running")
        return 0
    alive = running() is not None
    if as_json:
        import json

        print(json.dumps({**d, "running": alive}, indent=1))
        return 0
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["started"]))
    state = f"running ({d['mode']}, pid {d['pid']})" if alive else "DEAD (its process is gone; `halab down` cleans up)"
    print(f"{d['topology']}  {state}  since {since}\n  lab file: {d['lab_file']}\n  run dir:  {d['run_dir']}")
    print(f"  vip:      {d['vip'] or '-'}")
    for host, h in sorted(d["hosts"].items()):
        agents = [a["program"] for a in d["agents"] if a["host"] == host]
        print(f"  {host:10} {', '.join(h['addresses']):28} {', '.join(agents)}")
    return 0


def down() -> int:
    """Stop the running lab, or remove what a killed one left; afterwards nothing of it remains."""
    preflight.require_root()
    d = read_descriptor()
    if d is not None and running() is not None:
        try:
            control.request(Path(d["socket"]), ["down"], timeout=10)
        except HalabError:
            os.kill(d["pid"], signal.SIGTERM)  # it does not answer: its SIGTERM handler tears down
        # Until the process is gone, not only its descriptor: it holds the lab lock to its last moment.
        deadline = time.monotonic() + DOWN_TIMEOUT_S
        while is_same_process(d["pid"], d["ticks"] or 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        if is_same_process(d["pid"], d["ticks"] or 0):
            raise HalabError(f"The lab (pid {d['pid']}) did not stop within {DOWN_TIMEOUT_S:.0f} s.",
                             f"`sudo kill -9 {d['pid']}`, then `sudo halab down` again.")
    with LabLock():
        removed = cleanup.clean_leftovers()
    descriptor_path().unlink(missing_ok=True)
    (control_socket()).unlink(missing_ok=True)
    subprocess.run([*TMUX, "kill-server"], capture_output=True, check=False)
    for line in removed:
        print(f"removed {line}")
    print("the lab is down" if d is not None else "no lab was running", "(nothing of it is left)")
    return 0
