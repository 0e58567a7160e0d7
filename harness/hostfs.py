"""Files on the machine a lab host runs on: this one, or another server over ssh.

A database over there keeps its data on that machine's own disk, not on the shared run
directory. The same functions do the work on both machines: over there through
`python -m harness.hostfs OP PATH ...`, a file's text on its standard input (it may hold a
password, and a command line is readable by anyone in /proc). Every file is written fresh, mode
0600, never through a link someone left at the name.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from harness import servers
from harness.errors import HalabError
from harness.servers import LOCAL

#: The exit status of `python -m harness.hostfs` that refused: its last two lines of stderr are
#: the problem and the fix.
REFUSED = 3
#: ssh's own exit status when it could not connect (or lost the connection).
SSH_FAILED = 255
SETUP_THERE = "Provision that machine like this one (`sudo make setup`), which makes the users halab runs as."


def make_dir(path: Path, owner: str = "root", mode: int = 0o700, fresh: bool = False) -> None:
    """`fresh`: a new empty directory of `owner`'s, whatever was there. Otherwise the directory
    may exist already, but must then be root's own, not a link, and writable by root alone (the
    parents of every run's data)."""
    pw = pwd.getpwnam(owner)
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
    try:
        path.mkdir(mode=mode, exist_ok=not fresh)
    except OSError as exc:
        raise HalabError(f"Cannot create {path}: {exc.strerror or exc}.",
                         f"Make {path.parent} writable by root (a read-only /run?), or remove what is in the way "
                         f"at {path}.") from None
    if fresh:
        os.chown(path, pw.pw_uid, pw.pw_gid)
        return
    st = path.lstat()
    if st.st_uid != 0 or path.is_symlink() or st.st_mode & 0o022:
        raise HalabError(f"{path} is not root's own directory (owner root, not writable by others).",
                         f"Remove {path} and run again.")


def write(path: Path, text: str, owner: str = "root", append: bool = False) -> None:
    """Write (or append to) a file of `owner`'s, mode 0600, never through a link."""
    pw = pwd.getpwnam(owner)  # before anything is made: no such user, no file
    flags = os.O_WRONLY | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_CREAT | os.O_EXCL)
    if not append:
        path.unlink(missing_ok=True)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchown(f.fileno(), pw.pw_uid, pw.pw_gid)
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def read(path: Path) -> str | None:
    """The file's text; None when there is none."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def running(pattern: str) -> bool:
    """Whether a process whose command line matches `pattern` (pgrep -f) runs on this machine."""
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False).returncode == 0


class HostFiles:
    """The same operations on one server's files: this machine's directly, another's over ssh."""

    def __init__(self, server: str = LOCAL) -> None:
        self.server = server

    def make_dir(self, path: Path, owner: str = "root", mode: int = 0o700, fresh: bool = False) -> None:
        if self.server == LOCAL:
            return _here(make_dir, path, owner, mode, fresh)
        self._there(["mkdir", str(path), "--owner", owner, "--mode", f"{mode:o}", *(["--fresh"] if fresh else [])])

    def write(self, path: Path, text: str, owner: str = "root", append: bool = False) -> Path:
        if self.server == LOCAL:
            _here(write, path, text, owner, append)
        else:
            self._there(["write", str(path), "--owner", owner, *(["--append"] if append else [])], text)
        return path

    def read(self, path: Path) -> str | None:
        if self.server == LOCAL:
            return read(path)
        out = self._there(["read", str(path)])
        return out[1:] if out.startswith("+") else None  # "+": the file's text follows; "-": none

    def remove(self, path: Path) -> None:
        if self.server == LOCAL:
            return remove(path)
        self._there(["remove", str(path)])

    def running(self, pattern: str) -> bool:
        if self.server == LOCAL:
            return running(pattern)
        return self._there(["running", pattern]).strip() == "yes"

    def _there(self, args: list[str], text: str | None = None) -> str:
        line = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "harness.hostfs", *args])
        result = servers.run_on(self.server, line, input=text)
        said = result.stderr.strip().splitlines() or ["no answer"]
        if result.returncode == REFUSED and len(said) >= 2:
            raise HalabError(f"Server {self.server}: {said[-2]}", said[-1])
        if result.returncode == SSH_FAILED:
            raise HalabError(f"Server {self.server} cannot be reached by ssh ({said[-1]}).",
                             f"Check that `ssh {servers.ssh_user()}@{self.server} true` works.")
        if result.returncode != 0:
            raise HalabError(f"Server {self.server}: {said[-1]}.", SETUP_THERE)
        return result.stdout


def _here(op, *args) -> None:
    """`op` on this machine; what the system refuses, as one line with the fix (as over there)."""
    try:
        op(*args)
    except (OSError, KeyError) as exc:
        raise HalabError(f"{op.__name__} {args[0]}: {exc}.", SETUP_THERE) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="halab's file operations on a lab host's machine (run over ssh).")
    parser.add_argument("op", choices=["mkdir", "write", "read", "remove", "running"])
    parser.add_argument("path")
    parser.add_argument("--owner", default="root")
    parser.add_argument("--mode", default="700")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args(argv)
    path = Path(args.path)
    try:
        if args.op == "mkdir":
            make_dir(path, args.owner, int(args.mode, 8), args.fresh)
        elif args.op == "write":
            write(path, sys.stdin.read(), args.owner, args.append)
        elif args.op == "read":
            text = read(path)
            sys.stdout.write("-" if text is None else "+" + text)
        elif args.op == "remove":
            remove(path)
        else:
            print("yes" if running(args.path) else "no")
    except HalabError as exc:
        print(f"{exc.problem}\n{exc.fix}", file=sys.stderr)
        return REFUSED
    except (OSError, KeyError) as exc:  # KeyError: no such user
        print(f"{args.op} {path}: {exc}", file=sys.stderr)
        return 1  # not SSH_FAILED: ssh passes the command's own status on
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
