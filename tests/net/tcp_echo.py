"""A TCP echo server: tcp_echo.py HOST PORT READYFILE [COUNT].

Listens on HOST:PORT, touches READYFILE, echoes COUNT (default 1)
connections one after the other, each until the client closes, then exits. Runs inside the network namespace of the tap
test, where pytest's own threads cannot listen.
"""
import socket
import sys


def main():
    host, port, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(30)
    open(ready, "w").close()
    for _ in range(int(sys.argv[4]) if len(sys.argv) > 4 else 1):
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
