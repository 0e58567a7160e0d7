"""What a result was measured with: halab's version, the tools', the datapath; and who owns the files.

`result.json` carries this (`about`), so that a number read months later still says where it came
from; SCHEMA_VERSION changes whenever a field of result.json changes meaning.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

SCHEMA_VERSION = 2
#: Tool -> the command that prints its version (the first version-like word of its output is kept).
TOOLS = {"keepalived": ["keepalived", "--version"], "haproxy": ["haproxy", "-v"],
         "openvswitch": ["ovs-vsctl", "--version"], "mininet": ["mn", "--version"]}


def version() -> str:
    try:
        return metadata.version("halab")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def tool_versions() -> dict[str, str | None]:
    """The tools' versions (five commands run): once per process, not once per run."""
    found: dict[str, str | None] = {"halab": version()}
    try:
        found["os-ken"] = metadata.version("os-ken")
    except metadata.PackageNotFoundError:
        found["os-ken"] = None
    for tool, argv in TOOLS.items():
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            found[tool] = None
            continue
        match = re.search(r"\d+\.\d+(\.\d+)?", done.stdout + done.stderr)
        found[tool] = match.group(0) if match else None
    return found


def give_to_sudo_user(path: Path) -> None:
    """Files a run wrote under `sudo` belong to the user who typed sudo (not root): `path`, a file
    or a folder with everything in it.

    Best effort: a folder shared with a VM's host (vboxsf, virtiofs, 9p) may refuse owners, and
    there the files already belong to the host's user."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid or not path.exists():
        return
    names = [str(path)] if path.is_file() else [name for root, dirs, files in os.walk(path)
                                                for name in [root, *(os.path.join(root, n) for n in dirs + files)]]
    parent = path.parent
    if parent.exists() and parent.stat().st_uid == 0 and parent.name == "runs":
        names.append(str(parent))
    for name in names:
        try:
            os.lchown(name, int(uid), int(gid))
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP):
                return  # the file system keeps no owners of ours: none of the rest will change either
            raise
