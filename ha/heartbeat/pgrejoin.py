"""Make this host's PostgreSQL a standby of the peer's primary: the old primary back after a
failover, or a standby whose server is down. Never a second primary.

    python -m ha.heartbeat.pgrejoin --data-directory D --primary-conninfo C [--bin-directory B] [--no-start]

Run as the server's own user (the agent starts it through setpriv): nothing here needs root, and
nothing in the data directory is touched with more rights than its owner has.

1. Stop the server if it runs (fast). A crashed one is fine: pg_rewind recovers it first. Ask the
   primary for a checkpoint, which pg_rewind before PostgreSQL 16 needs to see the fork.
2. Keep this host's own configuration files: pg_rewind and a base backup copy the source's.
3. pg_rewind --write-recovery-conf from the primary: back to where the timelines forked; if that
   fails (the WAL back to the fork is gone), a fresh base backup, as Patroni does.
4. Put the host's configuration back, without the synchronous standby names that only a primary
   may set, and start the server as a standby (detached, with pg_ctl), until it accepts connections.

The heartbeat agent runs it on the standby node (`primary_conninfo` set on its postgresql
resource) while the peer is active and the local server is not a standby; the lab's harness
runs it with --no-start and starts the server itself. It prints how the rejoin went and exits 0,
or prints why not and exits 1; it never runs longer than --timeout.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ha.heartbeat.postgresql import DEFAULTS

#: This host's own files, kept across a rewind or a base backup.
OWN_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "halab.conf")
TIMEOUT_S = 150.0


class RejoinError(Exception):
    pass


class Steps:
    """The programs a rejoin runs, each bounded by what is left of one deadline."""

    def __init__(self, bin_dir: Path, timeout: float) -> None:
        self.bin_dir, self.deadline = bin_dir, time.monotonic() + timeout

    def run(self, program: str, *args: str, check: bool = True) -> str:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RejoinError(f"out of time before {program}")
        done = subprocess.run([str(self.bin_dir / program), *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=left)
        if check and done.returncode != 0:
            raise RejoinError(f"{program}: {(done.stderr or done.stdout).strip()[-400:]}")
        return done.stdout


def keep_own_files(data: Path) -> dict[str, bytes]:
    return {name: (data / name).read_bytes() for name in OWN_FILES if (data / name).is_file()}


def restore_own_files(data: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (data / name).unlink(missing_ok=True)
        (data / name).write_bytes(content)
    auto = data / "postgresql.auto.conf"
    if auto.is_file():   # the source's names its standbys (this host among them): only a primary may
        kept = [line for line in auto.read_text().splitlines(keepends=True)
                if not line.lstrip().startswith("synchronous_standby_names")]
        auto.write_text("".join(kept))


def rejoin(data: Path, conninfo: str, steps: Steps, start: bool = True) -> str:
    """How it was rejoined: "pg_rewind", or "base backup (why the rewind failed)"."""
    if subprocess.run([str(steps.bin_dir / "pg_ctl"), "status", "-D", str(data)], capture_output=True).returncode == 0:
        steps.run("pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60")
    own = keep_own_files(data)
    # The role may lack the right (PostgreSQL 15's pg_checkpoint): then the checkpoint that
    # follows every promotion has to do.
    steps.run("psql", "-d", conninfo, "-X", "-q", "-c", "CHECKPOINT", check=False)
    how = "pg_rewind"
    try:
        for attempt in range(3):   # a crashed server's last children may hold its shared memory a moment
            try:
                steps.run("pg_rewind", "-D", str(data), "--source-server", conninfo, "--write-recovery-conf",
                          "--no-sync")
                break
            except RejoinError:
                if attempt == 2:
                    raise
                time.sleep(1.0)
    except RejoinError as exc:
        how = f"base backup ({str(exc).splitlines()[-1][:160]})"
        for entry in data.iterdir():   # keep the directory itself: its owner and mode
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        steps.run("pg_basebackup", "-d", conninfo, "-D", str(data), "-X", "stream", "-c", "fast", "-R", "--no-sync")
    restore_own_files(data, own)
    if not (data / "standby.signal").exists():
        raise RejoinError("no standby.signal after the rejoin: not starting a server that could be a primary")
    if start:
        steps.run("pg_ctl", "start", "-D", str(data), "-w", "-t", "60", "-l", str(data / "rejoin.log"))
    return how


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ha.heartbeat.pgrejoin", description=__doc__.splitlines()[0])
    parser.add_argument("--data-directory", type=Path, required=True)
    parser.add_argument("--primary-conninfo", required=True, help="libpq connection string to the peer's server")
    parser.add_argument("--bin-directory", type=Path, default=Path(DEFAULTS["bin_directory"]))
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds for the whole rejoin")
    parser.add_argument("--no-start", action="store_true", help="leave the server stopped (its caller starts it)")
    args = parser.parse_args(argv)
    try:
        how = rejoin(args.data_directory, args.primary_conninfo, Steps(args.bin_directory, args.timeout),
                     start=not args.no_start)
    except (RejoinError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"pgrejoin: not rejoined: {exc}", file=sys.stderr)
        return 1
    print(f"pgrejoin: rejoined as a standby by {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
