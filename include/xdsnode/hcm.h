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
 * back here as one HTTP/1.1 exchange held in memory (hcm_pipe): the same
 * parser, routing, pools and replies, no socket. Trailers cross that hop
 * as chunked trailers.
 *
 * Owns: the connection, its socket, buffers, timers and its current
 * stream. Threads: the accepting worker's thread only.
 */
#ifndef XDSNODE_HCM_H
#define XDSNODE_HCM_H

#include <sys/socket.h>

#include "xdsnode/buffer.h"
#include "xdsnode/listener_config.h"
#include "xdsnode/worker.h"

/* Takes ownership of fd (an accepted, non-blocking socket). Returns 0, or
 * -1 (fd closed) on allocation failure. */
int hcm_connection_create(worker *w, const listener_config *cfg, int fd,
                          const struct sockaddr_storage *peer);

/* An exchange whose bytes come from and go to a peer in the same thread
 * (an HTTP/2 stream): the peer feeds HTTP/1.1 request bytes and takes
 * the HTTP/1.1 response bytes. Requests routed through it count as
 * HTTP/2 downstream (use_downstream_protocol_config, access log).
 *
 * The callbacks run from inside the HCM: they must not call hcm_pipe_*
 * (defer such work to the event loop).
 *   on_output:      response bytes wait in `out`; take (buffer_consume)
 *                   as many as fit, leave the rest: the HCM stops reading
 *                   the upstream above its buffer limit, and goes on at
 *                   hcm_pipe_output_ready.
 *   on_input_ready: hcm_pipe_input would take bytes again.
 *   on_close:       the HCM side is gone (response done and taken, or an
 *                   error); the hcm_pipe pointer is invalid from now on. */
typedef struct hcm_pipe hcm_pipe;
typedef struct {
    void (*on_output)(void *ctx, buffer *out);
    void (*on_input_ready)(void *ctx);
    void (*on_close)(void *ctx);
} hcm_pipe_ops;

hcm_pipe *hcm_pipe_create(worker *w, const listener_config *cfg,
                          const struct sockaddr_storage *peer, const hcm_pipe_ops *ops,
                          void *ctx);
/* Request bytes: all taken (returns len), or none while the HCM is not
 * reading (returns 0; wait for on_input_ready). May end in on_close. */
size_t hcm_pipe_input(hcm_pipe *p, const char *data, size_t len);
/* The peer can take more response bytes (on_output follows). */
void hcm_pipe_output_ready(hcm_pipe *p);
/* The peer is gone (stream reset or connection closed): the request is
 * cancelled as on a client disconnect. No callback follows. */
void hcm_pipe_abort(hcm_pipe *p);

#endif
