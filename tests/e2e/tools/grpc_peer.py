#!/usr/bin/python3
"""A gRPC server and client from Debian's python3-grpcio (gRPC core
underneath), to check that gRPC passes through xdsnode unchanged.

  grpc_peer.py serve PORT
      Service xdsnode.test.Echo with raw-bytes messages:
        Say    unary: "echo:" + request; initial metadata x-initial: yes,
               trailing metadata x-trailer: unary
        Fail   unary: status NOT_FOUND "no such thing" (trailers only)
        Count  server streaming: request "N" -> N messages "0".."N-1"
        Chat   bidi streaming: each message upper-cased; trailer x-trailer: chat
        Sum    client streaming: the sum of the integers sent
  grpc_peer.py call TARGET AUTHORITY
      Calls each method once through TARGET (host:port) with :authority
      AUTHORITY and prints one line per call, e.g. "unary ok echo:hi ...".
"""
import sys
import time
from concurrent import futures

import grpc

SERVICE = "xdsnode.test.Echo"


def serve(port):
    def say(req, ctx):
        ctx.send_initial_metadata((("x-initial", "yes"),))
        ctx.set_trailing_metadata((("x-trailer", "unary"),))
        return b"echo:" + req

    def fail(req, ctx):
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

    def count(req, ctx):
        for i in range(int(req.decode())):
            yield str(i).encode()

    def chat(it, ctx):
        ctx.set_trailing_metadata((("x-trailer", "chat"),))
        for m in it:
            yield m.upper()

    def total(it, ctx):
        return str(sum(int(m.decode()) for m in it)).encode()

    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Sum": grpc.stream_unary_rpc_method_handler(total),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("serving on", port, flush=True)
    server.wait_for_termination()


def md(pairs, key):
    return ",".join(v for k, v in (pairs or ()) if k == key)


def call(target, authority):
    ch = grpc.insecure_channel(target, options=(("grpc.default_authority", authority),))
    grpc.channel_ready_future(ch).result(timeout=10)
    m = lambda name: "/%s/%s" % (SERVICE, name)
    out = []

    resp, c = ch.unary_unary(m("Say")).with_call(b"hi", timeout=10)
    out.append("unary %s %s initial=%s trailer=%s" % (
        c.code().name, resp.decode(), md(c.initial_metadata(), "x-initial"),
        md(c.trailing_metadata(), "x-trailer")))

    try:
        ch.unary_unary(m("Fail"))(b"x", timeout=10)
        out.append("fail OK unexpected")
    except grpc.RpcError as e:
        out.append("fail %s %s" % (e.code().name, e.details()))

    msgs = [r.decode() for r in ch.unary_stream(m("Count"))(b"100", timeout=10)]
    out.append("server-stream %d %s" % (len(msgs), "ordered" if msgs == [str(i) for i in range(100)] else "WRONG"))

    it = ch.stream_stream(m("Chat"))(iter([b"a", b"bb", b"ccc"] * 20), timeout=10)
    got = [r.decode() for r in it]
    out.append("bidi %s %d %s trailer=%s" % (it.code().name, len(got), "".join(got[:3]),
                                             md(it.trailing_metadata(), "x-trailer")))

    resp = ch.stream_unary(m("Sum"))(iter(str(i).encode() for i in range(1, 1001)), timeout=10)
    out.append("client-stream %s" % resp.decode())

    big = bytes(range(256)) * 4096  # 1 MiB message
    resp = ch.unary_unary(m("Say"))(big, timeout=20)
    out.append("big %s" % ("intact" if resp == b"echo:" + big else "CORRUPT"))
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "call":
        call(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
