"""Classic BPF socket filters that sort packets by IP source address, in the kernel.

A backup follows one master: its adverts are what keeps the backup from taking over. In a flood
of junk (or a busy LAN), they would wait in the same socket queue as everything else, and when
the queue is full the kernel drops them with the junk: three lost in a row are a false takeover.
So the followed masters' adverts get a socket of their own: one filter accepts only their source
addresses, its complement (on the main socket) everything else; each packet lands in exactly one.

The filters read the source address at its offset from the network header (SKF_NET_OFF), which
works for IPv4 and IPv6 raw sockets alike (an IPv6 raw socket's data starts after the header).
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
SKF_NET_OFF = -0x100000
LD_W_ABS = 0x20     # BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at k
JEQ_K = 0x15        # BPF_JMP | BPF_JEQ | BPF_K: A == k ? skip jt : skip jf
RET_K = 0x06        # BPF_RET | BPF_K: keep k bytes (0: drop)
KEEP, DROP = 0xFFFFFFFF, 0
#: Where the source address starts, from the network header.
SOURCE_OFFSET = {4: 12, 6: 8}
#: A handful is plenty: one master per VRID on the interface.
MAX_ADDRESSES = 16  # jumps are 8 bits: 16 IPv6 blocks of 8 instructions stay in reach

Address = IPv4Address | IPv6Address
Instruction = tuple[int, int, int, int]


def program(addresses: Iterable[Address], keep_listed: bool) -> list[Instruction]:
    """Keep packets whose source is listed (keep_listed) or is not listed (not keep_listed)."""
    listed = sorted(set(addresses), key=lambda a: (a.version, a.packed))
    if len(listed) > MAX_ADDRESSES:
        raise ValueError(f"{len(listed)} addresses: at most {MAX_ADDRESSES}")
    if len({a.version for a in listed}) > 1:
        raise ValueError("one IP version per socket")
    blocks: list[list[Instruction]] = []
    for address in listed:
        words = struct.unpack(f"!{len(address.packed) // 4}I", address.packed)
        base = SKF_NET_OFF + SOURCE_OFFSET[address.version]
        blocks.append([ins for i, word in enumerate(words)
                       for ins in ((LD_W_ABS, 0, 0, (base + 4 * i) & 0xFFFFFFFF), (JEQ_K, 0, 0, word))])
    # Lay out: block 0, block 1, ..., "not listed" return, "listed" return. A word that differs
    # jumps to the next block; the last word of a block that matches jumps to "listed".
    out: list[Instruction] = []
    starts = []
    for block in blocks:
        starts.append(len(out))
        out += block
    not_listed, is_listed = len(out), len(out) + 1
    for b, block in enumerate(blocks):
        next_block = starts[b + 1] if b + 1 < len(blocks) else not_listed
        for j in range(1, len(block), 2):
            at = starts[b] + j
            code, _, _, k = out[at]
            last = j == len(block) - 1
            out[at] = (code, (is_listed - at - 1) if last else 0, next_block - at - 1, k)
    out += [(RET_K, 0, 0, DROP if keep_listed else KEEP), (RET_K, 0, 0, KEEP if keep_listed else DROP)]
    return out


def attach(sock: socket.socket, instructions: list[Instruction]) -> None:
    code = b"".join(struct.pack("=HBBI", *ins) for ins in instructions)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(instructions), ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def detach(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    except OSError:
        pass  # none attached
