"""Reading a configuration file: what every halab configuration (VRRP, heartbeat, load balancer)
gets before its own checks. The keys' checks are tested with each configuration module."""

import socket
from pathlib import Path

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


@pytest.mark.timeout(10)
def test_an_endless_file_is_refused_not_read_to_its_end():
    """A path to a stream that never ends (/dev/zero) must not hang the agent at start."""
    with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
        read_toml(Path("/dev/zero"))


def test_a_file_that_cannot_be_opened_says_why(tmp_path):
    """A unix socket cannot be opened as a file (ENXIO): the message gives the system's reason."""
    path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(ConfigError) as err:
            read_toml(path)
    assert str(err.value) == f"{path}: cannot be read (No such device or address); check its permissions"


def test_missing_files_and_directories_say_what_to_pass(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_toml(tmp_path / "nope.toml")
    assert str(err.value) == f"{tmp_path / 'nope.toml'}: no such file; pass --config with the path of a TOML file"
    with pytest.raises(ConfigError) as err:
        read_toml(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a directory; pass --config with the path of a TOML file"
