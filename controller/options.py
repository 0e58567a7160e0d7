"""The controller's own settings as os-ken options: the launcher sets them on the command line
it hands os-ken, and the apps read them from their CONF (os-ken apps take no arguments)."""

from __future__ import annotations

from os_ken import cfg

from ha.assist import DEFAULT_DEBOUNCE_S

OPTIONS = [
    cfg.StrOpt("halab-lb-config", help="the load balancer's configuration (TOML); empty: no load balancer"),
    cfg.IntOpt("halab-api-port", default=6680, help="the status API's port on 127.0.0.1"),
    cfg.StrOpt("halab-event-log", help="where the load balancer logs backend state changes (JSON lines)"),
    cfg.StrOpt("halab-fence-socket", help="serve fencing requests on this unix socket"),
    cfg.StrOpt("halab-fence-secret-file", help="the cluster secret fencing requests are signed with"),
    cfg.StrOpt("halab-assist-socket", help="tell backup agents on this unix socket when their master's port goes down"),
    cfg.StrOpt("halab-relay-dir", help="serve a second copy of the fencing and assist sockets here, for its owner"),
    cfg.FloatOpt("halab-assist-debounce", default=DEFAULT_DEBOUNCE_S,
                 help="seconds a port stays down before backups hear of it"),
]
cfg.CONF.register_cli_opts(OPTIONS)


def as_args(**values: object) -> list[str]:
    """`--halab-...` arguments for os-ken's CONF, for the values that are set."""
    return [arg for key, value in values.items() if value is not None
            for arg in (f"--halab-{key.replace('_', '-')}", str(value))]
