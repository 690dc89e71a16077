"""An echo server: echo_server.py tcp|udp HOST PORT READYFILE [COUNT].

Listens on HOST:PORT, touches READYFILE, then echoes COUNT (default 1) TCP
connections one after the other, each until the client closes, or COUNT
UDP datagrams back to their senders, then exits. Runs inside the network
namespaces of the tests, where pytest's own threads cannot listen.
"""
import socket
import sys


def main():
    proto, host, port, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    srv = socket.socket(socket.AF_INET, kind)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.settimeout(30)
    if proto == "tcp":
        srv.listen(1)
    open(ready, "w").close()
    for _ in range(count):
        if proto == "udp":
            data, peer = srv.recvfrom(65536)
            srv.sendto(data, peer)
            continue
        conn, _ = srv.accept()
        conn.settimeout(30)
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)


if __name__ == "__main__":
    main()
