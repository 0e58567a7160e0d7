"""Reading a configuration file: what every halab configuration (VRRP, heartbeat, load balancer)
gets before its own checks. The keys' checks are tested with each configuration module."""

import contextlib
import errno
import os
import socket
import threading
import time

import pytest

from ha.configcheck import MAX_CONFIG_BYTES, ConfigError, read_toml


def _file_of(tmp_path, size: int):
    """A valid TOML file of exactly `size` bytes (one key, then a comment as padding)."""
    head = b'name = "x"\n#'
    path = tmp_path / "big.toml"
    path.write_bytes(head + b"a" * (size - len(head) - 1) + b"\n")
    assert path.stat().st_size == size
    return path


def test_a_file_at_the_size_limit_is_read(tmp_path):
    assert read_toml(_file_of(tmp_path, MAX_CONFIG_BYTES)) == {"name": "x"}


def test_a_file_one_byte_over_the_limit_is_refused(tmp_path):
    path = _file_of(tmp_path, MAX_CONFIG_BYTES + 1)
    with pytest.raises(ConfigError) as err:
        read_toml(path)
    assert str(err.value) == f"{path}: larger than 1048576 bytes; is it the right file?"


def test_a_stream_that_does_not_end_is_refused_not_read_to_its_end(tmp_path):
    """A path to a pipe whose writer does not close it must not hang the agent at start: reading
    stops one byte past the limit. (Read to its end, it would wait the writer's 10 s.)"""
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)
    done = threading.Event()

    def writer() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as f:
            f.write(b"#" * (2 * MAX_CONFIG_BYTES))
            done.wait(10)  # held open: no end of file

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
            read_toml(fifo)
        assert time.monotonic() - started < 5, "waited for the end of the stream"
    finally:
        done.set()
        thread.join(5)


def test_a_file_that_cannot_be_opened_says_why(tmp_path):
    """A unix socket cannot be opened as a file (ENXIO): the message gives the system's reason."""
    path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(ConfigError) as err:
            read_toml(path)
    assert str(err.value) == f"{path}: cannot be read ({os.strerror(errno.ENXIO)}); check its permissions"


def test_missing_files_and_directories_say_what_to_pass(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_toml(tmp_path / "nope.toml")
    assert str(err.value) == f"{tmp_path / 'nope.toml'}: no such file; pass --config with the path of a TOML file"
    with pytest.raises(ConfigError) as err:
        read_toml(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a directory; pass --config with the path of a TOML file"
