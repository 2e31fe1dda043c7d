#!/usr/bin/env python3
"""Writes captures whose cost the sender controls, for scripts/bench flow.

  gen_flows.py syn-scan N OUT.pcap     N SYNs to distinct ports of distinct hosts, never
                                       answered (a scan through a filter): N open flows
  gen_flows.py many-flows N OUT.pcap   N connections open at once: every handshake first,
                                       then a request and a reply on each, then every FIN
  gen_flows.py overlaps N OUT.pcap     one connection, its first byte missing, then N segments
                                       of 1400 bytes each overlapping the previous by half
  gen_flows.py tiny N OUT.pcap         4 connections, each its first byte missing, then N
                                       one-byte segments each (interleaved)
  gen_flows.py collide N OUT.pcap      N IPv6 SYNs from source addresses crafted so that every
                                       connection key hashes alike under the fixed hasher
                                       tcpflow-lite used before issue 25 (FxHash's multiply-rotate
                                       over the words of the key): a hash-flooding sender
  gen_flows.py random-v6 N OUT.pcap    its twin: N IPv6 SYNs from random source addresses
  gen_flows.py open-replies N OUT.pcap N connections open at once, each a 100-byte request and
                                       a 16 KiB reply in 1448-byte segments, FINs only at the end
  gen_flows.py small N OUT.pcap        N connections one after the other, each a 100-byte
                                       request and a 100 kB reply in 1448-byte segments, an ACK
                                       every second segment (the small-packet capture, generated)
"""
import random
import struct
import sys


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


def frame6(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack(">IHBB16s16s", 6 << 28, len(tcp), 6, 64, src, dst)
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd" + ip + tcp


MASK = (1 << 64) - 1
K = 0x517CC1B727220A95


def rotl(x, n):
    return ((x << n) | (x >> (64 - n))) & MASK


def colliding_source(i):
    """The i-th source address whose connection key (source address, source port, server
    address, port, no VLAN) hashes like every other's under the old fixed hasher: it is fed
    the words [1 (IPv6), low and high halves of the address (little-endian), ...], so the
    first half is free and the second solves the state after it to one target (a product
    with an odd constant is invertible modulo 2^64)."""
    k_inverse = pow(K, -1, 1 << 64)
    state = (rotl(0, 5) ^ 1) * K & MASK
    first = i << 16
    state = (rotl(state, 5) ^ first) * K & MASK
    second = ((0x123456789ABCDEF0 * k_inverse) & MASK) ^ rotl(state, 5)
    return first.to_bytes(8, "little") + second.to_bytes(8, "little")


def host(n):
    return bytes([10, (n >> 16) & 255, (n >> 8) & 255, n & 255])


SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def main():
    mode, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    records = []
    t = [1_700_000_000_000_000]

    def add(data):
        t[0] += 10
        records.append(struct.pack("<IIII", t[0] // 1_000_000, t[0] % 1_000_000, len(data), len(data)) + data)

    scanner = bytes([192, 168, 0, 1])
    if mode == "syn-scan":
        for i in range(n):
            add(frame(scanner, host(i // 1000 + 1), 40000, 1 + i % 1000, i * 7919, 0, SYN))
    elif mode == "many-flows":
        server = bytes([192, 168, 0, 2])
        client = lambda i: (host(i // 50000 + 1), 10000 + i % 50000)
        for i in range(n):
            c, port = client(i)
            add(frame(c, server, port, 80, 1000, 0, SYN))
            add(frame(server, c, 80, port, 5000, 1001, SYN | ACK))
        for i in range(n):
            c, port = client(i)
            add(frame(c, server, port, 80, 1001, 5001, PSH | ACK, b"GET /%d HTTP/1.0\r\n\r\n" % i))
            add(frame(server, c, 80, port, 5001, 1001, PSH | ACK, b"HTTP/1.0 200 OK\r\n\r\nflow %d\n" % i))
        for i in range(n):
            c, port = client(i)
            add(frame(c, server, port, 80, 1100, 5100, FIN | ACK))
            add(frame(server, c, 80, port, 5100, 1101, FIN | ACK))
    elif mode == "overlaps":
        client, server = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
        add(frame(client, server, 40000, 80, 0, 0, SYN))
        data = bytes(range(256)) * 6
        for i in range(n):
            start = 2 + i * 700  # byte 1 never comes: everything waits behind the hole
            add(frame(client, server, 40000, 80, start, 1, PSH | ACK, data[start % 256:][:1400]))
    elif mode == "tiny":
        server = bytes([10, 0, 0, 2])
        clients = [(bytes([10, 0, 0, 10 + c]), 40000 + c) for c in range(4)]
        for client, port in clients:
            add(frame(client, server, port, 80, 0, 0, SYN))
        for i in range(n):
            for client, port in clients:
                add(frame(client, server, port, 80, 2 + i, 1, ACK, bytes([97 + i % 26])))
    elif mode in ("collide", "random-v6"):
        server = bytes.fromhex("fd00" + "00" * 13 + "01")
        rng = random.Random(25)
        for i in range(n):
            if mode == "collide":
                src = colliding_source(i + 1)
            else:
                src = bytes([0]) + rng.randbytes(15)
            add(frame6(src, server, 40000, 80, i * 7919, 0, SYN))
    elif mode == "open-replies":
        server = bytes([192, 168, 0, 2])
        client = lambda i: (host(i // 50000 + 1), 10000 + i % 50000)
        reply = bytes(range(256)) * 64  # 16 KiB
        for i in range(n):
            c, port = client(i)
            add(frame(c, server, port, 80, 1000, 0, SYN))
            add(frame(server, c, 80, port, 5000, 1001, SYN | ACK))
        for i in range(n):
            c, port = client(i)
            add(frame(c, server, port, 80, 1001, 5001, PSH | ACK, (b"GET /%d " % i).ljust(100, b"x")))
        for i in range(n):
            c, port = client(i)
            for off in range(0, len(reply), 1448):
                add(frame(server, c, 80, port, 5001 + off, 1101, ACK, reply[off:off + 1448]))
        for i in range(n):
            c, port = client(i)
            add(frame(c, server, port, 80, 1101, 5001 + len(reply), FIN | ACK))
            add(frame(server, c, 80, port, 5001 + len(reply), 1102, FIN | ACK))
    elif mode == "small":
        server = bytes([192, 168, 0, 2])
        reply = bytes(range(256)) * 400  # 100 kB
        for i in range(n):
            c, port = host(i // 50000 + 1), 10000 + i % 50000
            add(frame(c, server, port, 80, 1000, 0, SYN))
            add(frame(server, c, 80, port, 5000, 1001, SYN | ACK))
            add(frame(c, server, port, 80, 1001, 5001, PSH | ACK, (b"GET /%d " % i).ljust(100, b"x")))
            for k, off in enumerate(range(0, len(reply), 1448)):
                add(frame(server, c, 80, port, 5001 + off, 1101, ACK, reply[off:off + 1448]))
                if k % 2:
                    add(frame(c, server, port, 80, 1101, 5001 + off + 1448, ACK))
            add(frame(server, c, 80, port, 5001 + len(reply), 1101, FIN | ACK))
            add(frame(c, server, port, 80, 1101, 5002 + len(reply), FIN | ACK))
    else:
        sys.exit(__doc__)
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        f.write(b"".join(records))


if __name__ == "__main__":
    main()
