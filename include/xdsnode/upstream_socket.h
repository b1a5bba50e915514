/*
 * upstream_socket.h: the socket options every upstream connection gets
 * from its cluster, as Envoy sets them: TCP_NODELAY, and with
 * upstream_connection_options.tcp_keepalive SO_KEEPALIVE plus
 * TCP_KEEPCNT / TCP_KEEPIDLE / TCP_KEEPINTVL for the fields that are set
 * (unset ones keep the OS default), xds-facts §2.4.
 *
 * Owns: nothing (the socket is the caller's). Threads: any.
 */
#ifndef XDSNODE_UPSTREAM_SOCKET_H
#define XDSNODE_UPSTREAM_SOCKET_H

#include <stddef.h>

#include "xdsnode/cluster_config.h"

/* Applies cfg's options to fd. Returns 0, or -1 with err naming the
 * option the kernel refused. */
int upstream_socket_apply(int fd, const cluster_config *cfg, char *err, size_t errlen);

#endif
