"""ASH103 blocking-socket."""

import socket


async def resolve(host):
    return socket.gethostbyname(host)  # error: ASH103:12


async def probe(host):
    conn = socket.create_connection((host, 80))  # error: ASH103:12
    conn.sendall(b"ping")  # error: ASH103:5
