"""An L2 learning switch: the plain network that every halab topology starts from.

In the spirit of Ryu's simple_switch_13: learn source MACs per port, install a flow once the
destination is known, flood otherwise. All OpenFlow messages are built in `_add_flow` and
`_packet_out`, so the handlers only decide.
"""

from __future__ import annotations

from pathlib import Path

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import arp, ethernet, packet
from os_ken.ofproto import ofproto_v1_3

from controller import options  # noqa: F401 (registers the options this app reads from CONF)
from controller.assist import AssistServer
from controller.fencing import Fencer
from controller.ids import ALL_BITS, L2_COOKIE
from controller.locations import Locations

#: Learned flows expire when idle so that a host that moved (a VIP taken over) is relearned.
IDLE_TIMEOUT_S = 30
#: MAC addresses remembered per switch at the most (a flood of new source MACs must not grow it forever).
MAX_MACS = 4096


class L2Switch(app_manager.OSKenApp):
    """Learn MAC -> port per switch; forward known destinations in the switch, flood the rest."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]  # noqa: RUF012 (os-ken reads this class attribute)
    #: The table this app owns; an app that puts its own table in front sets it to 1.
    TABLE = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.mac_to_port: dict[int, dict[str, int]] = {}
        self.locations = Locations()
        self.fencer = self.assist = None
        if self.CONF.halab_fence_socket:
            secret = Path(self.CONF.halab_fence_secret_file).read_text().strip().encode()
            self.fencer = Fencer(secret, self.locations)
            self.fencer.serve(Path(self.CONF.halab_fence_socket))
        if self.CONF.halab_assist_socket:
            self.assist = AssistServer(self.locations, self.CONF.halab_assist_debounce)
            self.assist.serve(Path(self.CONF.halab_assist_socket))

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev) -> None:
        """A switch connected: multicast floods in the switch; broadcast (ARP: where hosts are)
        and every other unmatched packet go to the controller."""
        dp = ev.msg.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        self.mac_to_port[dp.id] = {}
        to_controller = parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)
        self._add_flow(dp, priority=0, match=parser.OFPMatch(), actions=[to_controller], idle=0)
        # VRRP adverts and the like: flooding them through the controller would let a flood of
        # multicast from one host crowd out everyone's adverts on their way through Python.
        self._add_flow(dp, priority=2, match=parser.OFPMatch(eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00")),
                       actions=[parser.OFPActionOutput(ofp.OFPP_FLOOD)], idle=0)
        self._add_flow(dp, priority=3, match=parser.OFPMatch(eth_dst="ff:ff:ff:ff:ff:ff"), actions=[to_controller],
                       idle=0)
        self.logger.info("switch %016x connected", dp.id)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev) -> None:
        """Learn where the source lives; forward or flood towards the destination."""
        msg = ev.msg
        dp = msg.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        in_port = msg.match["in_port"]
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None:
            return
        table = self.mac_to_port.setdefault(dp.id, {})
        if (a := pkt.get_protocol(arp.arp)) is not None:
            self.locations.saw(dp, a.src_ip, in_port)
        if self.learnable(eth.src):
            if table.get(eth.src, in_port) != in_port:
                # The MAC moved (a VRRP virtual MAC after failover): flows still send it to the old port.
                self._delete_flows_to_mac(dp, eth.src)
            table.pop(eth.src, None)
            table[eth.src] = in_port  # the most recently seen last
            if len(table) > MAX_MACS:
                del table[next(iter(table))]  # forget the longest unseen: it floods until relearned
        out_port = table.get(eth.dst, ofp.OFPP_FLOOD)
        actions = [parser.OFPActionOutput(out_port)]
        if out_port != ofp.OFPP_FLOOD:
            match = parser.OFPMatch(in_port=in_port, eth_dst=eth.dst, eth_src=eth.src)
            self._add_flow(dp, priority=1, match=match, actions=actions, idle=IDLE_TIMEOUT_S)
        self._packet_out(dp, msg, in_port, actions)

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
        if self.assist is not None:
            self.assist.port_changed(dp, msg.desc.port_no, down)
        if down:
            self.locations.port_down(dp, msg.desc.port_no)
            table = self.mac_to_port.get(dp.id, {})
            for mac in [m for m, port in table.items() if port == msg.desc.port_no]:
                del table[mac]
            self._delete_flows_to_port(dp, msg.desc.port_no)

    # --- the only places that build OpenFlow messages -------------------------------------

    def _add_flow(self, dp, priority: int, match, actions, idle: int) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, cookie=L2_COOKIE, table_id=self.TABLE, priority=priority,
                                      match=match, instructions=inst, idle_timeout=idle))

    def _delete_flows_to_port(self, dp, port_no: int) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPFlowMod(datapath=dp, cookie=L2_COOKIE, cookie_mask=ALL_BITS,
                                      command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                      out_port=port_no, out_group=ofp.OFPG_ANY,
                                      match=parser.OFPMatch()))

    def _delete_flows_to_mac(self, dp, mac: str) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPFlowMod(datapath=dp, cookie=L2_COOKIE, cookie_mask=ALL_BITS,
                                      command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL, out_port=ofp.OFPP_ANY,
                                      out_group=ofp.OFPG_ANY, match=parser.OFPMatch(eth_dst=mac)))

    def _packet_out(self, dp, msg, in_port: int, actions) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        data = msg.data if msg.buffer_id == ofp.OFP_NO_BUFFER else None
        # OpenFlow 1.5 carries the input port in a match, 1.3 in a field of its own.
        where = ({"match": parser.OFPMatch(in_port=in_port)} if dp.ofproto.OFP_VERSION >= 0x06
                 else {"in_port": in_port})
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=msg.buffer_id, actions=actions, data=data, **where))
