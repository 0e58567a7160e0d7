"""An L2 learning switch in two tables: the plain network that every halab topology starts from.

    table TABLE (sources)           ARP                 -> a copy to the controller, goto DST_TABLE
                                    multicast           -> flood (VRRP adverts never cross Python)
                                    in_port + eth_src   -> goto DST_TABLE          (a source learned)
                                    anything else       -> a copy to the controller, goto DST_TABLE
    table DST_TABLE (destinations)  eth_dst             -> output to its port      (learned)
                                    anything else       -> flood

The switch forwards every packet itself; the controller only learns (where each MAC lives, and
where each IPv4 address is, from ARP) and installs flows, so no packet waits for Python. That
matters most at a failover: the new holder's gratuitous ARP, the clients' first packets to it
and its ARP for them all cross at once, where a controller in the path (Ryu's simple_switch_13,
halab's first switch) made each a round trip through Python, several milliseconds in all.
"""

from __future__ import annotations

from pathlib import Path

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import arp, ethernet, packet
from os_ken.ofproto import ofproto_v1_3

from controller import options, unixsock  # noqa: F401 (options: registers the options this app reads from CONF)
from controller.assist import AssistServer
from controller.fencing import Fencer
from controller.ids import ALL_BITS, L2_COOKIE
from controller.locations import Locations
from ha.announce import ETH_P_ARP

#: A source that sent no unicast through the switch for this long is forgotten with its flows
#: (traffic to it floods until it sends again): the MAC table stays bounded.
IDLE_TIMEOUT_S = 30
#: MAC addresses remembered per switch at the most (a flood of new source MACs must not grow it forever).
MAX_MACS = 4096


class L2Switch(app_manager.OSKenApp):
    """Learn MAC -> port per switch; forward known destinations in the switch, flood the rest."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]  # noqa: RUF012 (os-ken reads this class attribute)
    #: The tables this app owns; an app that puts its own table in front moves them.
    TABLE = 0
    DST_TABLE = 1

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.mac_to_port: dict[int, dict[str, int]] = {}
        self.datapaths: dict[int, object] = {}  # the connected switches by id (a reconnect replaces one)
        self.locations = Locations()
        self.fencer = self.assist = None
        relay_dir = Path(self.CONF.halab_relay_dir) if self.CONF.halab_relay_dir else None
        if self.CONF.halab_fence_socket:
            secret = Path(self.CONF.halab_fence_secret_file).read_text().strip().encode()
            self.fencer = Fencer(secret, self.locations, self.datapaths)
            for path, owner in unixsock.places(Path(self.CONF.halab_fence_socket), relay_dir, "fence"):
                self.fencer.serve(path, owner)
        if self.CONF.halab_assist_socket:
            self.assist = AssistServer(self.locations, self.CONF.halab_assist_debounce)
            for path, owner in unixsock.places(Path(self.CONF.halab_assist_socket), relay_dir, "assist"):
                self.assist.serve(path, owner)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev) -> None:
        """A switch connected: the two tables' fixed flows (the module's docstring)."""
        dp = ev.msg.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        self.datapaths[dp.id] = dp
        self.mac_to_port[dp.id] = {}
        self._delete_flows(dp)  # what an earlier connection learned: this one starts over
        copy = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
        self._add_flow(dp, self.TABLE, 0, parser.OFPMatch(), copy, goto=True)
        self._add_flow(dp, self.TABLE, 2, parser.OFPMatch(eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00")),
                       [parser.OFPActionOutput(ofp.OFPP_FLOOD)])
        self._add_flow(dp, self.TABLE, 3, parser.OFPMatch(eth_type=ETH_P_ARP), copy, goto=True)
        self._add_flow(dp, self.DST_TABLE, 0, parser.OFPMatch(), [parser.OFPActionOutput(ofp.OFPP_FLOOD)])
        self.logger.info("switch %016x connected", dp.id)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev) -> None:
        """A copy of a packet the switch has forwarded already: learn where its source lives."""
        msg = ev.msg
        dp = msg.datapath
        parser = dp.ofproto_parser
        in_port = msg.match["in_port"]
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None or _multicast(eth.src):
            return  # a group address as a source says nothing of where anyone is
        if (a := pkt.get_protocol(arp.arp)) is not None:
            self.locations.saw(dp.id, a.src_ip, in_port)
        table = self.mac_to_port.setdefault(dp.id, {})
        if self.learnable(eth.src):
            if table.get(eth.src, in_port) != in_port:
                # The MAC moved (a VRRP virtual MAC after failover): its flows still name the old port.
                self._forget(dp, eth.src)
            table.pop(eth.src, None)
            table[eth.src] = in_port  # the most recently seen last
            self._add_flow(dp, self.DST_TABLE, 1, parser.OFPMatch(eth_dst=eth.src),
                           [parser.OFPActionOutput(in_port)])
            if len(table) > MAX_MACS:
                self._forget(dp, next(iter(table)))  # the longest unseen: it floods until relearned
        # Known from this port from now on: its packets stop coming here (a VIP's MAC too, which
        # every backend sends from and which is never learned as a destination).
        self._add_flow(dp, self.TABLE, 1, parser.OFPMatch(in_port=in_port, eth_src=eth.src), [], goto=True,
                       idle=IDLE_TIMEOUT_S, removed=True)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def flow_removed_handler(self, ev) -> None:
        """A source silent for IDLE_TIMEOUT_S: forget it, and the flow that sends to it."""
        msg = ev.msg
        dp = msg.datapath
        if msg.cookie != L2_COOKIE or msg.table_id != self.TABLE or msg.reason != dp.ofproto.OFPRR_IDLE_TIMEOUT:
            return
        mac, port = msg.match.get("eth_src"), msg.match.get("in_port")
        if mac is not None and self.mac_to_port.get(dp.id, {}).get(mac) == port:
            self._forget(dp, mac)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply_handler(self, ev) -> None:
        if self.fencer is not None:
            self.fencer.confirmed(ev.msg.xid)

    def learnable(self, mac: str) -> bool:
        """Whether a source MAC tells where a host is (not so for a VIP's MAC, sent from every backend)."""
        return True

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def port_status_handler(self, ev) -> None:
        """A port went down: tell the backups of a master behind it (assist), forget what was
        learned on it, so traffic floods until relearned."""
        msg = ev.msg
        dp = msg.datapath
        down = bool(msg.desc.state & dp.ofproto.OFPPS_LINK_DOWN) or msg.reason == dp.ofproto.OFPPR_DELETE
        if self.fencer is not None:  # before the backups hear of it: they may ask to fence at once
            self.fencer.link_changed(dp.id, msg.desc.port_no, down)
        if self.assist is not None:
            self.assist.port_changed(dp.id, msg.desc.port_no, down)
        if down:
            self.locations.port_down(dp.id, msg.desc.port_no)
            table = self.mac_to_port.get(dp.id, {})
            for mac in [m for m, port in table.items() if port == msg.desc.port_no]:
                del table[mac]
            self._delete_flows(dp, out_port=msg.desc.port_no)
            self._delete_flows(dp, match=dp.ofproto_parser.OFPMatch(in_port=msg.desc.port_no))

    def _forget(self, dp, mac: str) -> None:
        """Where `mac` lives is not known any more: no flow sends to it, none passes it as known."""
        self.mac_to_port.get(dp.id, {}).pop(mac, None)
        parser = dp.ofproto_parser
        self._delete_flows(dp, match=parser.OFPMatch(eth_dst=mac))
        self._delete_flows(dp, match=parser.OFPMatch(eth_src=mac))

    # --- the only places that build OpenFlow messages -------------------------------------

    def _add_flow(self, dp, table: int, priority: int, match, actions, goto: bool = False, idle: int = 0,
                  removed: bool = False) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
        if goto:
            inst.append(parser.OFPInstructionGotoTable(self.DST_TABLE))
        dp.send_msg(parser.OFPFlowMod(datapath=dp, cookie=L2_COOKIE, table_id=table, priority=priority,
                                      match=match, instructions=inst, idle_timeout=idle,
                                      flags=ofp.OFPFF_SEND_FLOW_REM if removed else 0))

    def _delete_flows(self, dp, match=None, out_port: int | None = None) -> None:
        """Delete the L2 flows (in every table) that `match` covers, or that output to `out_port`."""
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPFlowMod(datapath=dp, cookie=L2_COOKIE, cookie_mask=ALL_BITS,
                                      command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                      out_port=ofp.OFPP_ANY if out_port is None else out_port,
                                      out_group=ofp.OFPG_ANY, match=match or parser.OFPMatch()))


def _multicast(mac: str) -> bool:
    """A group address (the low bit of the first octet set): never anyone's source."""
    return bool(int(mac.split(":")[0], 16) & 1)
