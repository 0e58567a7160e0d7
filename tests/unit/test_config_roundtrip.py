"""Every configuration the README shows survives the harness's path: parse, dump, parse again."""

import re
import tomllib
from pathlib import Path

import pytest

from controller import lb_config
from ha.heartbeat import config as heartbeat_config
from ha.vrrp import config as vrrp_config

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = re.findall(r"^```toml\n(.*?)^```$", README.read_text(), flags=re.DOTALL | re.MULTILINE)


def module_for(raw: dict):
    if "vrrp_instance" in raw:
        return vrrp_config
    if "service" in raw:
        return lb_config
    return heartbeat_config


def test_the_readme_shows_an_example_of_each_configuration():
    kinds = {module_for(tomllib.loads(text)).__name__ for text in EXAMPLES}
    assert kinds == {vrrp_config.__name__, lb_config.__name__, heartbeat_config.__name__}


@pytest.mark.parametrize("text", EXAMPLES, ids=lambda text: text.split("\n", 1)[0])
def test_a_readme_example_survives_dump_and_parse(text):
    module = module_for(tomllib.loads(text))
    parsed = module.parse(tomllib.loads(text))
    dumped = module.dump(parsed)
    assert module.parse(tomllib.loads(dumped)) == parsed


def test_defaults_survive_too():
    raw = {"vrrp_instance": [{"name": "A", "interface": "eth0", "virtual_router_id": 7,
                              "virtual_ipaddress": ["fd00::7/64"], "use_vmac": True}]}
    parsed = vrrp_config.parse(raw)
    assert vrrp_config.parse(tomllib.loads(vrrp_config.dump(parsed))) == parsed
    assert parsed.instances[0].use_vmac == "vrrp6.7"  # apart from an IPv4 instance of VRID 7
