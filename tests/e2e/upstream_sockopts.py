#!/usr/bin/env python3
"""upstream_sockopts.py PID PORT: for every established TCP socket of
process PID whose peer is 127.0.0.1:PORT, prints one line
"keepalive=K idle=I intvl=N cnt=C", read with getsockopt on a duplicate of
the live socket (pidfd_getfd), sorted. Used by test_livepools.sh."""
import ctypes
import os
import socket
import sys

SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438


def main():
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        sys.exit("pidfd_open: errno %d" % ctypes.get_errno())
    lines = []
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if not target.startswith("socket:"):
            continue
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
        if fd < 0:
            continue
        s = socket.socket(fileno=fd)
        try:
            if s.type != socket.SOCK_STREAM or s.family != socket.AF_INET:
                continue
            try:
                peer = s.getpeername()
            except OSError:
                continue
            if peer != ("127.0.0.1", port):
                continue
            lines.append("keepalive=%d idle=%d intvl=%d cnt=%d" % (
                s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)))
        finally:
            s.close()
    for line in sorted(lines):
        print(line)


main()
