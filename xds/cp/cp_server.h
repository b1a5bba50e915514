/*
 * cp_server.h: the mock control plane's gRPC server (gRPC core, insecure
 * credentials): ADS StreamAggregatedResources (SotW) and
 * DeltaAggregatedResources (Delta); any other method gets UNIMPLEMENTED.
 *
 * One completion queue, driven by cp_server_poll() from one thread, which
 * is the only thread touching gRPC objects. Per call at most one RECV and
 * one SEND are outstanding; responses wait in a per-call queue.
 *
 * Owns: the grpc_server, the completion queue, every call and the current
 * snapshot (cp_server_set_snapshot() takes ownership).
 * Threads: the control plane's one thread; grpc_init()/grpc_shutdown() are
 * called by cp_server_start()/cp_server_stop().
 */
#ifndef XDSNODE_CP_SERVER_H
#define XDSNODE_CP_SERVER_H

#include <stddef.h>

#include "cp_snapshot.h"

typedef struct cp_server cp_server;

/* Binds `address` ("127.0.0.1:0" allowed) and starts serving `snap`
 * (ownership moves in, also on failure). Sets *port to the bound port. */
int cp_server_start(const char *address, cp_snapshot *snap, cp_server **out, int *port,
                    char *err, size_t errlen);

/* Handles completion-queue events for up to timeout_ms. */
void cp_server_poll(cp_server *srv, int timeout_ms);

/* Replaces the snapshot (ownership moves in) and pushes it to every stream
 * on every type it subscribed to. If the snapshot carries a sequence (also
 * the one given to cp_server_start), the server runs it: each time every
 * stream that was sent the current version ACKed it, the next version is
 * pushed (cp_sequence_next), until "sequence_done" (or "sequence_stopped"
 * on a NACK) is logged; a new snapshot replaces a running sequence. */
void cp_server_set_snapshot(cp_server *srv, cp_snapshot *snap);

/* Shuts down: cancels every call, drains the queue, frees everything and
 * calls grpc_shutdown(). */
void cp_server_stop(cp_server *srv);

#endif
