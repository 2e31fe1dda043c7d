#!/usr/bin/env python3
"""Rewrites a capture so that tcpflow 1.6.1 reads it as the IP layer says, working around
tcpflow's own bugs (listed in ../shared/pcaps/corpus/README.md), so that what remains of a
difference with tcpflow-lite is a real one:

  padding    frames cut to their IP datagram's length (tcpflow writes Ethernet/SLL padding)
  link       SLL2, raw-IPv4/IPv6 (228/229) and BSD loopback re-framed as Ethernet (tcpflow
             cannot read the first ones and drops IPv6 in loopback families 24/28/30)
  tso        IPv4 total length 0 (TSO captures) set to the captured length (tcpflow drops them)
  atomic     IPv6 atomic fragments (offset 0, no more fragments) without their fragment header
  doff       TCP data offset below 5 dropped (tcpflow reads data from inside the header)
  ihl        IPv4 headers longer than the datagram dropped (tcpflow writes from them)
  qinq       an 802.1ad (0x88a8, 0x9100) outer VLAN tag rewritten as 802.1Q (tcpflow leaves
             it out of the file name, merging that VLAN's flows with untagged ones)
  short      IPv4 TCP datagrams whose total length ends inside the TCP header dropped (tcpflow
             reads the header and data from the frame's bytes beyond the datagram, Ethernet
             padding or the capture's next bytes: a flow between ports 0 and 0)
  vlan-merge the same 4-tuple untagged and on VLANs, or on two VLANs: tcpflow keys its flows
             without the tag, so their streams land in one file (the first one's name), one
             overwriting the other; no rewrite of one capture undoes that, so each VLAN's
             frames (and the untagged ones) are written to a capture of their own: OUT for the
             untagged frames, OUT.vlan<TCI>.pcap for each tag, each part's name printed as
             "part PATH" (run tcpflow on each, into one directory)

  half       a data segment exactly 2^31 from the next sequence number tcpflow expects on
             its direction moved on by one: tcpflow takes the jump as a signed 32-bit number
             and bounds it with abs(), and abs(-2^31) is negative, so instead of starting a new
             file as for any other jump beyond 16 MiB it drops the segment (after a SYN) or
             shifts the file by 2 GiB (4 GiB after two such segments); one further, the jump is
             2^31 - 1 and starts a new file, as tcpflow-lite does for both

  pcapng     a pcapng capture rewritten as classic pcap (tcpflow writes the padding of its
             frames and its other bugs cannot be undone in place); counted once per capture

usage: normalize.py IN OUT.pcap   (IN classic pcap or pcapng; prints the fix-ups made, one per line,
                                  and the extra captures written, "part PATH")
"""
import struct
import sys
from collections import Counter


def ip_offset(link, frame):
    """(offset of the IP header, ethernet header to keep or None) for a frame."""
    if link == 1:
        at = 12
        while frame[at:at + 2] in (b"\x81\x00", b"\x88\xa8", b"\x91\x00"):
            at += 4
        if frame[at:at + 2] not in (b"\x08\x00", b"\x86\xdd"):
            return None, None
        return at + 2, frame[:at + 2]
    if link in (12, 14, 101, 228, 229):
        return 0, None
    if link == 113:
        return 16, None
    if link == 276:
        return 20, None
    if link in (0, 108):
        return 4, None
    return None, None


def pcap_records(data):
    """(link, seconds, microseconds, original length, frame) of each record of a classic pcap."""
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF
    at = 24
    while at + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack(endian + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + caplen]
        at += 16 + caplen
        if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            frac //= 1000
        yield link, sec, frac, origlen, frame


def pcapng_records(data):
    """The same for a pcapng capture: enhanced and simple packet blocks, each with its
    interface's link type and time resolution (sections may change byte order)."""
    endian, interfaces, at = "<", [], 0
    while at + 12 <= len(data):
        kind = struct.unpack(endian + "I", data[at:at + 4])[0]
        if data[at:at + 4] == b"\x0a\x0d\x0d\x0a":  # section header: byte order, new interfaces
            endian = "<" if data[at + 8:at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
            kind = 0x0A0D0D0A
        length = struct.unpack(endian + "I", data[at + 4:at + 8])[0]
        if length < 12 or at + length > len(data):
            return
        body = data[at + 8:at + length - 4]
        at += length
        if kind == 1 and len(body) >= 8:  # interface description
            link, _, snaplen = struct.unpack(endian + "HHI", body[:8])
            resolution, options = 10 ** 6, body[8:]
            while len(options) >= 4:
                code, size = struct.unpack(endian + "HH", options[:4])
                if code == 0:
                    break
                if code == 9 and size >= 1:  # if_tsresol
                    value = options[4]
                    resolution = 2 ** (value & 0x7F) if value & 0x80 else 10 ** value
                options = options[4 + (size + 3) // 4 * 4:]
            interfaces.append((link, resolution, snaplen))
        elif kind == 6 and len(body) >= 20:  # enhanced packet
            interface, high, low, caplen, origlen = struct.unpack(endian + "IIIII", body[:20])
            if interface >= len(interfaces):
                continue
            link, resolution, _ = interfaces[interface]
            ticks = (high << 32) | low
            sec, rest = divmod(ticks, resolution)
            yield link, sec, rest * 10 ** 6 // resolution, origlen, body[20:20 + caplen]
        elif kind == 3 and len(body) >= 4 and interfaces:  # simple packet: no time
            link, _, snaplen = interfaces[0]
            origlen = struct.unpack(endian + "I", body[:4])[0]
            caplen = min(origlen, snaplen or origlen, len(body) - 4)
            yield link, 0, 0, origlen, body[4:4 + caplen]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    fixes = Counter()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        records = pcapng_records(data)
        fixes["pcapng"] += 1
    else:
        records = pcap_records(data)
    written, tags, expected = [], {}, {}  # ...; 4-tuple: VLAN ids seen; direction: tcpflow's next seq
    for link, sec, frac, origlen, frame in records:
        caplen = len(frame)
        offset, ether = ip_offset(link, frame)
        if offset is None:
            continue
        if ether is not None and ether[12:14] in (b"\x88\xa8", b"\x91\x00"):
            ether = ether[:12] + b"\x81\x00" + ether[14:]
            fixes["qinq"] += 1
        ip = bytearray(frame[offset:])
        if len(ip) < 20:
            continue
        version = ip[0] >> 4
        if ether is None:
            ether = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01" + (b"\x08\x00" if version == 4 else b"\x86\xdd")
            if link not in (1, 113):
                fixes["link"] += 1
        if version == 4:
            total = struct.unpack(">H", ip[2:4])[0]
            if total == 0:
                total = len(ip)
                ip[2:4] = struct.pack(">H", total)
                fixes["tso"] += 1
            ihl = (ip[0] & 15) * 4
            if ihl < 20 or ihl > total:
                fixes["ihl"] += 1
                continue
            if ip[9] == 6 and (struct.unpack(">H", ip[6:8])[0] & 0x1FFF) == 0 and total < ihl + 20:
                fixes["short"] += 1
                continue
            if ip[9] == 6 and len(ip) >= ihl + 13 and (struct.unpack(">H", ip[6:8])[0] & 0x1FFF) == 0 and ip[ihl + 12] >> 4 < 5:
                fixes["doff"] += 1
                continue
            if len(ip) > total:
                fixes["padding"] += 1
                ip = ip[:total]
        elif version == 6 and len(ip) >= 40:
            plen = struct.unpack(">H", ip[4:6])[0]
            if len(ip) > 40 + plen and plen > 0:
                fixes["padding"] += 1
                ip = ip[:40 + plen]
            if ip[6] == 44 and len(ip) >= 48:
                frag = struct.unpack(">H", ip[42:44])[0]
                if frag & 0xFFF9 == 0:  # offset 0, no more fragments: atomic
                    ip[6] = ip[40]
                    ip[4:6] = struct.pack(">H", plen - 8)
                    ip = ip[:40] + ip[48:]
                    fixes["atomic"] += 1
            if ip[6] == 6 and len(ip) >= 53 and ip[52] >> 4 < 5:
                fixes["doff"] += 1
                continue
        else:
            continue
        if half_jump(ip, expected):
            fixes["half"] += 1
        frame = bytes(ether) + bytes(ip)
        tag = struct.unpack(">H", ether[14:16])[0] if ether[12:14] == b"\x81\x00" else None
        length = max(len(frame), origlen - (caplen - len(frame)))
        written.append((tag, struct.pack("<IIII", sec, frac, len(frame), length) + frame))
        key = four_tuple(ip)
        if key is not None:
            tags.setdefault(key, set()).add(tag)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    parts = {None: []}
    if any(len(seen) > 1 for seen in tags.values()):
        fixes["vlan-merge"] += 1
        for tag, record in written:
            parts.setdefault(tag, []).append(record)
    else:
        parts[None] = [record for _, record in written]
    open(dst, "wb").write(header + b"".join(parts.pop(None)))
    for fix, count in sorted(fixes.items()):
        print(f"{fix} {count}")
    for tag, part in sorted(parts.items()):
        path = f"{dst}.vlan{tag}.pcap"
        open(path, "wb").write(header + b"".join(part))
        print(f"part {path}")


def half_jump(ip, expected):
    """Follows tcpflow's next expected sequence number (nsn) per direction, as
    tcpdemux::process_tcp and tcpip::store_packet move it, and moves a data segment's sequence
    number on by one where it is exactly 2^31 from it (in place). Returns whether it did."""
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6 or struct.unpack(">H", ip[6:8])[0] & 0x1FFF or len(ip) < ihl + 20:
            return False
        at, end = ihl, struct.unpack(">H", ip[2:4])[0]
        key = (bytes(ip[12:20]), bytes(ip[ihl:ihl + 4]))
    else:
        if ip[6] != 6 or len(ip) < 60:
            return False
        at, end = 40, 40 + struct.unpack(">H", ip[4:6])[0]
        key = (bytes(ip[8:40]), bytes(ip[40:44]))
    seq = struct.unpack(">I", ip[at + 4:at + 8])[0]
    flags = ip[at + 13]
    syn, rst = flags & 2, flags & 4
    length = max(0, min(end, len(ip)) - at - (ip[at + 12] >> 4) * 4)
    nsn, moved = expected.get(key), False
    if nsn is not None and length > 0 and (seq - nsn) & 0xFFFFFFFF == 0x80000000:
        seq = (seq + 1) & 0xFFFFFFFF
        ip[at + 4:at + 8] = struct.pack(">I", seq)
        moved = True
    if nsn is not None:
        delta = (seq - nsn) & 0xFFFFFFFF
        delta = delta - (1 << 32) if delta & 0x80000000 else delta
        if abs(delta) > 16 << 20:
            nsn = None  # tcpflow starts the direction over
    if nsn is None:
        if syn:
            nsn = (seq + 1 + length) & 0xFFFFFFFF
        elif length > 0:
            nsn = (seq + length) & 0xFFFFFFFF
    elif length > 0 and not (length == 1 and delta == -1):  # a keep-alive moves nothing
        nsn = (seq + length) & 0xFFFFFFFF
    if rst or nsn is None:
        expected.pop(key, None)
    else:
        expected[key] = nsn
    return moved


def four_tuple(ip):
    """The TCP 4-tuple of an IP datagram (either direction alike), or None."""
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6 or len(ip) < ihl + 4:
            return None
        ends = sorted([(bytes(ip[12:16]), bytes(ip[ihl:ihl + 2])), (bytes(ip[16:20]), bytes(ip[ihl + 2:ihl + 4]))])
    else:
        if ip[6] != 6 or len(ip) < 44:
            return None
        ends = sorted([(bytes(ip[8:24]), bytes(ip[40:42])), (bytes(ip[24:40]), bytes(ip[42:44]))])
    return tuple(ends)


if __name__ == "__main__":
    main()
