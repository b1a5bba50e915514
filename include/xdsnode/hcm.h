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
 * back here as one exchange held in memory (hcm_pipe): the same routing,
 * pools, retries and replies, no socket and no HTTP/1.1 text for
 * proxied requests and responses (trailers included).
 *
 * Owns: the connection, its socket, buffers, timers and its current
 * stream. Threads: the accepting worker's thread only.
 */
#ifndef XDSNODE_HCM_H
#define XDSNODE_HCM_H

#include <sys/socket.h>

#include "xdsnode/buffer.h"
#include "xdsnode/http_headers.h"
#include "xdsnode/listener_config.h"
#include "xdsnode/worker.h"

/* Takes ownership of fd (an accepted, non-blocking socket). Returns 0, or
 * -1 (fd closed) on allocation failure. */
int hcm_connection_create(worker *w, const listener_config *cfg, int fd,
                          const struct sockaddr_storage *peer);

/* An exchange held in memory for a peer in the same thread (an HTTP/2
 * stream): the peer hands over the request as parsed fields and body
 * bytes (hcm_pipe_request/body/end) and receives a proxied response as
 * fields and raw body bytes (on_response_head/trailers/end + on_output),
 * a local reply as HTTP/1.1 text (on_output). Requests routed through it
 * count as HTTP/2 downstream (use_downstream_protocol_config, access log,
 * stats).
 *
 * The callbacks run from inside the HCM: they must not call hcm_pipe_*
 * (defer such work to the event loop).
 *   on_output:      response bytes wait in `out`; take (buffer_consume)
 *                   as many as fit, leave the rest: the HCM stops reading
 *                   the upstream above its buffer limit, and goes on at
 *                   hcm_pipe_output_ready.
 *   on_input_ready: hcm_pipe_body/end would take the request again.
 *   on_close:       the HCM side is gone (an error, or the idle timeout);
 *                   the hcm_pipe pointer is invalid from now on. */
typedef struct hcm_pipe hcm_pipe;
/* A proxied response's head, handed over without HTTP/1.1 text: the
 * upstream's fields (hop-by-hop ones and "server" are the peer's to
 * leave out; names may be lower-cased in place) plus the HCM's own. */
typedef struct {
    int status;
    header_list *fields;
    unsigned long long service_time_ms; /* x-envoy-upstream-service-time */
    const char *server;                 /* server */
    int no_body;                        /* HEAD, 204, 304, content-length 0 */
} hcm_response_head;
typedef struct {
    void (*on_output)(void *ctx, buffer *out);
    void (*on_input_ready)(void *ctx);
    void (*on_close)(void *ctx);
    /* Proxied responses (local replies still come as HTTP/1.1 text
     * through on_output): the head; then the body as raw bytes through
     * on_output; the trailers (fields first..h->n-1 of h); the end, with
     * the body bytes still queued for on_output. */
    void (*on_response_head)(void *ctx, const hcm_response_head *head);
    void (*on_response_trailers)(void *ctx, const header_list *h, size_t first);
    void (*on_response_end)(void *ctx, size_t queued);
} hcm_pipe_ops;

hcm_pipe *hcm_pipe_create(worker *w, const listener_config *cfg,
                          const struct sockaddr_storage *peer, const hcm_pipe_ops *ops,
                          void *ctx);
/* The request, already parsed (an HTTP/2 stream's HEADERS), without
 * HTTP/1.1 text: the method, the path, and the fields, which the HCM
 * takes over (`headers` is left empty): they must hold host and, for a
 * body of known length sent as is, content-length; `chunked` says the
 * body's length is unknown. Then hcm_pipe_body and hcm_pipe_end. Returns
 * 0, or -1 for a method HTTP/1.1 does not know (nothing started). Any of
 * these may end in on_close. */
int hcm_pipe_request(hcm_pipe *p, const char *method, const char *path, size_t path_len,
                     header_list *headers, int chunked);
/* Body bytes: all taken (len), or none while the HCM is not reading (0;
 * wait for on_input_ready). */
size_t hcm_pipe_body(hcm_pipe *p, const char *data, size_t len);
/* The request ends, with its trailers (may be NULL; copied). Returns 0,
 * or -1 while the HCM is not reading (wait for on_input_ready). */
int hcm_pipe_end(hcm_pipe *p, const header_list *trailers);
/* The peer can take more response bytes (on_output follows). */
void hcm_pipe_output_ready(hcm_pipe *p);
/* The peer is gone (stream reset or connection closed): the request is
 * cancelled as on a client disconnect. No callback follows. */
void hcm_pipe_abort(hcm_pipe *p);

#endif
