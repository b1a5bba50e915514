/*
 * hcm.h: the HTTP connection manager for one accepted downstream
 * connection: HTTP/1.1 parsing with http-parser (strict: bad syntax,
 * conflicting Content-Length/Transfer-Encoding -> 400, headers above
 * max_request_headers_kb -> 431, then close), keep-alive, one request at
 * a time (pipelined requests wait in the input buffer), routing, the
 * upstream request through the host's conn_pool (HTTP/1.1 or HTTP/2 by
 * the cluster's protocol) with streaming
 * bodies both ways and backpressure (per_connection_buffer_limit_bytes),
 * retries, route timeout, Envoy's local replies and the access log.
 * With codec_type AUTO or HTTP2, a connection that opens with the HTTP/2
 * preface is handed to h2_downstream.h, which brings each of its streams
 * back here as an HTTP/1.1 connection over a socketpair.
 *
 * Owns: the connection, its socket, buffers, timers and its current
 * stream. Threads: the accepting worker's thread only.
 */
#ifndef XDSNODE_HCM_H
#define XDSNODE_HCM_H

#include <sys/socket.h>

#include "xdsnode/listener_config.h"
#include "xdsnode/worker.h"

/* Takes ownership of fd (an accepted, non-blocking socket). Returns 0, or
 * -1 (fd closed) on allocation failure. */
int hcm_connection_create(worker *w, const listener_config *cfg, int fd,
                          const struct sockaddr_storage *peer);

#endif
