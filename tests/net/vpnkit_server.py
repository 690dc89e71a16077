"""A VPNKit-protocol test server (SPEC.md §4), written for khyve's tests.

It listens on a Unix socket, does VPNKit's handshake (Init both ways, the
41-byte command, the 258-byte VIF or disconnect reply), then plays a tiny
network behind the interface: a gateway at 192.168.65.1 that answers ARP,
ICMP echo and DHCP (handing out the preferred IPv4 address of the command,
else 192.168.65.3). An echo request whose payload is b"bye" makes it hang
up, to test connection loss.

Run as a program (`python3 vpnkit_server.py SOCK`) for manual and tier-4
tests, or use VPNKitServer from pytest. What the client sent (its Init and
command, raw) is kept in .client_init and .command for byte-level checks.
"""
import argparse
import os
import socket
import struct
import sys
import threading

MAGIC = b"VMN3T"
VERSION = 22
GW_IP = bytes([192, 168, 65, 1])
GW_MAC = bytes([0x02, 0x50, 0x00, 0x00, 0x00, 0x01])
DEFAULT_IP = bytes([192, 168, 65, 3])
DEFAULT_MAC = bytes([0x02, 0x50, 0x00, 0x00, 0x00, 0x02])
BCAST = b"\xff" * 6


def csum(data, start=0):
    if len(data) % 2:
        data += b"\0"
    s = start + sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000,
                      64, proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp(src, dst, sport, dport, data):
    length = 8 + len(data)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + data
    c = csum(pseudo + seg) or 0xFFFF
    return ipv4(src, dst, 17, seg[:6] + struct.pack("!H", c) + seg[8:])


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("client closed")
        buf += chunk
    return buf


class VPNKitServer:
    """One client at a time, served on a thread.

    mode: "vif" (normal), "disconnect" (refuse with a message), "badmagic",
    "silent" (never answers the Init). version: what our Init says.
    malformed: after the handshake, send three frames the client must drop
    (length 0, shorter than an ethernet header, longer than max_packet_size).
    """

    def __init__(self, path, mode="vif", version=VERSION, mac=DEFAULT_MAC,
                 mtu=1500, max_packet_size=1550, malformed=False):
        self.path = path
        self.mode = mode
        self.version = version
        self.mac = mac
        self.mtu = mtu
        self.max_packet_size = max_packet_size
        self.malformed = malformed
        self.client_init = None
        self.command = None
        self.frames = []       # frames received from the client
        self.errors = []
        self.lease_ip = DEFAULT_IP
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.serve_one, daemon=True)
        self.thread.start()
        return self

    def close(self):
        self.sock.close()
        if self.thread:
            self.thread.join(5)
        if os.path.exists(self.path):
            os.unlink(self.path)

    def serve_one(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                self.handshake_and_run(conn)
            except EOFError:
                pass
            except Exception as e:  # reported to the test
                self.errors.append(repr(e))

    def handshake_and_run(self, conn):
        self.client_init = read_exact(conn, 49)
        if self.mode == "silent":
            conn.recv(1)
            return
        magic = b"XXXXX" if self.mode == "badmagic" else MAGIC
        conn.sendall(magic + struct.pack("<I", self.version) + b"f" * 40)
        if self.mode == "badmagic" or self.version != VERSION:
            conn.recv(1)
            return
        self.command = read_exact(conn, 41)
        if self.command[0] == 8:
            self.lease_ip = struct.pack("!I", struct.unpack_from("<I", self.command, 37)[0])
        if self.mode == "disconnect":
            msg = b"UUID in use\x07"
            reply = bytes([2, len(msg)]) + msg
            conn.sendall(reply + b"\0" * (258 - len(reply)))
            conn.recv(1)
            return
        reply = bytes([1]) + struct.pack("<HH", self.mtu, self.max_packet_size) + self.mac
        conn.sendall(reply + b"\0" * (258 - len(reply)))
        if self.malformed:
            too_long = self.max_packet_size + 1
            conn.sendall(struct.pack("<H", 0) +
                         struct.pack("<H", 10) + b"\0" * 10 +
                         struct.pack("<H", too_long) + b"\0" * too_long)
        while True:
            (length,) = struct.unpack("<H", read_exact(conn, 2))
            frame = read_exact(conn, length)
            self.frames.append(frame)
            try:
                answers = self.answer(frame)
            except (IndexError, struct.error) as e:
                # A frame this small server cannot parse: note it, go on.
                self.errors.append(f"unparsed frame {frame[:64].hex()}: {e!r}")
                answers = []
            for out in answers:
                conn.sendall(struct.pack("<H", len(out)) + out)
            if self.hang_up:
                return

    hang_up = False

    def eth(self, dst, ethertype, payload):
        return dst + GW_MAC + struct.pack("!H", ethertype) + payload

    def answer(self, f):
        if len(f) < 14:
            return []
        dst, src, ethertype = f[0:6], f[6:12], struct.unpack("!H", f[12:14])[0]
        if ethertype == 0x0806 and len(f) >= 42:
            op = struct.unpack("!H", f[20:22])[0]
            if op == 1 and f[38:42] == GW_IP:
                arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + GW_MAC + GW_IP + f[22:32]
                return [self.eth(src, 0x0806, arp)]
            return []
        if ethertype != 0x0800 or len(f) < 34:
            return []
        ip = f[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if csum(ip[:ihl]) != 0:
            self.errors.append("bad IPv4 checksum from the client")
            return []
        proto, sip, dip = ip[9], ip[12:16], ip[16:20]
        payload = ip[ihl:total]
        if proto == 1 and dip == GW_IP and payload[0] == 8:
            if csum(payload) != 0:
                self.errors.append("bad ICMP checksum from the client")
                return []
            if payload[8:] == b"bye":
                self.hang_up = True
                return []
            body = b"\0\0\0\0" + payload[4:]
            body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
            return [self.eth(src, 0x0800, ipv4(GW_IP, sip, 1, body))]
        if proto == 17 and len(payload) >= 8 + 240:
            sport, dport = struct.unpack("!HH", payload[:4])
            if (sport, dport) == (68, 67):
                return self.dhcp(src, payload[8:])
        return []

    def dhcp(self, src, b):
        xid = b[4:8]
        chaddr = b[28:44]
        opts, i = {}, 240
        while i < len(b) and b[i] != 255:
            if b[i] == 0:
                i += 1
                continue
            opts[b[i]] = b[i + 2:i + 2 + b[i + 1]]
            i += 2 + b[i + 1]
        kind = opts.get(53, b"\0")[0]
        if kind == 1:
            reply_type = 2
        elif kind == 3:
            reply_type = 5
        else:
            return []
        bootp = bytearray(240)
        bootp[0:4] = bytes([2, 1, 6, 0])
        bootp[4:8] = xid
        bootp[10:12] = b"\x80\x00"
        bootp[16:20] = self.lease_ip
        bootp[20:24] = GW_IP
        bootp[28:44] = chaddr
        bootp[236:240] = bytes([99, 130, 83, 99])
        options = bytes([53, 1, reply_type, 54, 4]) + GW_IP
        options += bytes([51, 4]) + struct.pack("!I", 3600)
        options += bytes([1, 4, 255, 255, 255, 0, 3, 4]) + GW_IP
        options += bytes([6, 4]) + GW_IP + bytes([255])
        data = bytes(bootp) + options
        data += b"\0" * max(0, 300 - len(data))
        pkt = udp(GW_IP, b"\xff\xff\xff\xff", 67, 68, data)
        return [self.eth(BCAST, 0x0800, pkt)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--mode", default="vif",
                    choices=["vif", "disconnect", "badmagic", "silent"])
    ap.add_argument("--version", type=int, default=VERSION)
    args = ap.parse_args()
    server = VPNKitServer(args.path, mode=args.mode, version=args.version)
    try:
        while True:
            server.serve_one()
            server.hang_up = False
            for e in server.errors:
                print(f"vpnkit_server: {e}", file=sys.stderr, flush=True)
            server.errors.clear()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
