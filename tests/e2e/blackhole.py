#!/usr/bin/env python3
"""blackhole.py PORT: a loopback listener whose accept queue is full, so
further SYNs to 127.0.0.1:PORT go unanswered (connect timeouts without a
remote address). Listens with backlog 0, fills the queue with one
connection it never accepts, prints "ready", then waits to be killed."""
import signal
import socket
import sys

port = int(sys.argv[1])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(0)
filler = socket.create_connection(("127.0.0.1", port))
print("ready", flush=True)
signal.pause()
