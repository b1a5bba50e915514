/*
 * tcp_proxy.h: envoy.filters.network.tcp_proxy for one accepted
 * connection: one upstream connection per downstream connection to a
 * host of the listener's cluster (bounded by the cluster's
 * max_connections: over it the downstream is closed and
 * upstream_cx_overflow counted), bytes copied both ways through buffers
 * bounded by per_connection_buffer_limit_bytes (the reader of a side
 * stops while the other side's buffer is full), half-close propagated
 * (EOF on one side becomes shutdown(SHUT_WR) on the other once its
 * buffer is written), idle timeout.
 *
 * Owns: the session, both sockets and their buffers.
 * Threads: the accepting worker's thread only.
 */
#ifndef XDSNODE_TCP_PROXY_H
#define XDSNODE_TCP_PROXY_H

#include <sys/socket.h>

#include "xdsnode/listener_config.h"
#include "xdsnode/worker.h"

/* Takes ownership of fd. Returns 0, or -1 (fd closed). */
int tcp_proxy_session_create(worker *w, const listener_config *cfg, int fd,
                             const struct sockaddr_storage *peer);

#endif
