"""Make this host's PostgreSQL a standby of the peer's primary: the old primary back after a
failover, or a standby whose server is down. Never a second primary.

    python -m ha.heartbeat.pgrejoin --data-directory D --primary-conninfo C [--bin-directory B] [--os-user U]

1. Stop the server if it runs (fast). A crashed one is fine: pg_rewind recovers it first. Ask the
   primary for a checkpoint, which pg_rewind before PostgreSQL 16 needs to see the fork.
2. Keep this host's own configuration files: pg_rewind and a base backup copy the source's.
3. pg_rewind --write-recovery-conf from the primary: back to where the timelines forked; if that
   fails (the WAL back to the fork is gone), a fresh base backup, as Patroni does.
4. Put the host's configuration back, without the synchronous standby names that only a primary
   may set, and start the server as a standby (detached, with pg_ctl), until it accepts connections.

The heartbeat agent runs it on the standby node (`primary_conninfo` set on its postgresql
resource) while the peer is active and the local server does not stream from it. It prints how
the rejoin went and exits 0, or prints why not and exits 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ha.heartbeat.postgresql import DEFAULTS, as_user

#: This host's own files, kept across a rewind or a base backup.
OWN_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "halab.conf")
TIMEOUT_S = 120


class RejoinError(Exception):
    pass


def run(argv: tuple[str, ...], what: str, timeout: float = TIMEOUT_S) -> str:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RejoinError(f"{what}: {(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


def keep_own_files(data: Path) -> dict[str, bytes]:
    return {name: (data / name).read_bytes() for name in OWN_FILES if (data / name).exists()}


def restore_own_files(data: Path, files: dict[str, bytes], uid: int, gid: int) -> None:
    for name, content in files.items():
        path = data / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchown(f.fileno(), uid, gid)
            f.write(content)
    auto = data / "postgresql.auto.conf"
    if auto.exists():   # the source's names its standbys (this host among them): only a primary may
        kept = [line for line in auto.read_text().splitlines(keepends=True)
                if not line.lstrip().startswith("synchronous_standby_names")]
        auto.write_text("".join(kept))


def rejoin(args: argparse.Namespace) -> str:
    import pwd

    data, bin_dir = Path(args.data_directory), Path(args.bin_directory)
    user = pwd.getpwnam(args.os_user)
    pg = lambda *argv: as_user(args.os_user, *argv)  # noqa: E731
    if subprocess.run(pg(str(bin_dir / "pg_ctl"), "status", "-D", str(data)), capture_output=True).returncode == 0:
        run(pg(str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"), "pg_ctl stop")
    own = keep_own_files(data)
    # Before PostgreSQL 16, pg_rewind reads the source's timeline from its last checkpoint: with
    # none since the promotion it sees no fork. Ask for one (the role may lack the right: then
    # the checkpoint that follows every promotion has to do).
    subprocess.run(pg(str(bin_dir / "psql"), "-d", args.primary_conninfo, "-X", "-q", "-c", "CHECKPOINT"),
                   capture_output=True, timeout=60)
    how = "pg_rewind"
    try:
        for attempt in range(3):   # a crashed server's last children may hold its shared memory a moment
            try:
                run(pg(str(bin_dir / "pg_rewind"), "-D", str(data), "--source-server", args.primary_conninfo,
                       "--write-recovery-conf", "--no-sync"), "pg_rewind")
                break
            except RejoinError:
                if attempt == 2:
                    raise
                time.sleep(1.0)
    except RejoinError as exc:
        how = f"base backup ({str(exc).splitlines()[-1][:160]})"
        for entry in data.iterdir():   # keep the directory itself: its owner and mode
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        run(pg(str(bin_dir / "pg_basebackup"), "-d", args.primary_conninfo, "-D", str(data), "-X", "stream",
               "-c", "fast", "-R", "--no-sync"), "pg_basebackup")
    restore_own_files(data, own, user.pw_uid, user.pw_gid)
    if not (data / "standby.signal").exists():
        raise RejoinError("no standby.signal after the rejoin: not starting a server that could be a primary")
    run(pg(str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", "60", "-l",
           str(data / "rejoin.log")), "pg_ctl start")
    return how


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ha.heartbeat.pgrejoin", description=__doc__.splitlines()[0])
    parser.add_argument("--data-directory", required=True)
    parser.add_argument("--primary-conninfo", required=True, help="libpq connection string to the peer's server")
    parser.add_argument("--bin-directory", default=DEFAULTS["bin_directory"])
    parser.add_argument("--os-user", default=DEFAULTS["os_user"])
    args = parser.parse_args(argv)
    try:
        how = rejoin(args)
    except (RejoinError, OSError, KeyError, subprocess.TimeoutExpired) as exc:
        print(f"pgrejoin: not rejoined: {exc}", file=sys.stderr)
        return 1
    print(f"pgrejoin: rejoined as a standby by {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
