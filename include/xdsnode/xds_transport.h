/*
 * xds_transport.h: one bidirectional gRPC stream to the management server,
 * on the gRPC C core library, delivered to the main libev loop.
 *
 * Owns: the gRPC channel, the completion queue, the transport thread that
 * blocks on it, the current call, and queued outgoing messages.
 * Threads: the transport thread only pulls completion events and hands
 * them to the main loop (a mutex-guarded queue + ev_async); every other
 * function, every callback, and every gRPC call on the stream runs on the
 * main thread. No other code touches gRPC objects.
 * Lifetime: xds_transport_destroy() cancels the stream, destroys the
 * channel, drains the queue and joins the thread; no callback runs after
 * it returns.
 *
 * The channel accepts messages of any size, reconnects with backoff
 * (XDS_BACKOFF_* below) and sends HTTP/2 keepalive pings every
 * XDS_KEEPALIVE_TIME_MS (istiod enforces a 15 s minimum).
 */
#ifndef XDSNODE_XDS_TRANSPORT_H
#define XDSNODE_XDS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

#define XDS_BACKOFF_INITIAL_MS 500
#define XDS_BACKOFF_MAX_MS 30000
#define XDS_KEEPALIVE_TIME_MS 30000
#define XDS_KEEPALIVE_TIMEOUT_MS 10000

typedef struct xds_transport xds_transport;

typedef struct {
    /* The server accepted the stream (its initial metadata arrived). */
    void (*on_open)(void *ctx);
    /* One message (a serialized DiscoveryResponse or DeltaDiscoveryResponse). */
    void (*on_message)(void *ctx, const uint8_t *data, size_t len);
    /* The stream ended: gRPC status code and details. The transport is then
     * idle until xds_transport_start() is called again. */
    void (*on_closed)(void *ctx, int status, const char *details);
} xds_transport_callbacks;

/* Creates the channel to `target` ("host:port", "[v6]:port", "unix:/path")
 * and starts the transport thread. Returns 0, or -1 with err. */
int xds_transport_create(struct ev_loop *loop, const char *target,
                         const xds_transport_callbacks *cbs, void *ctx,
                         xds_transport **out, char *err, size_t errlen);

/* Starts a new stream on `method` (the full gRPC path). It waits for the
 * channel to be ready (gRPC wait-for-ready). Returns 0, or -1 if a stream
 * is already open. */
int xds_transport_start(xds_transport *t, const char *method);

/* Queues one message on the open stream (copied). Returns 0, or -1 when
 * no stream is open. */
int xds_transport_send(xds_transport *t, const uint8_t *data, size_t len);

/* Whether a stream is open (started and not yet closed). */
int xds_transport_is_open(const xds_transport *t);

/* Cancels the open stream, if any; on_closed follows. */
void xds_transport_cancel(xds_transport *t);

void xds_transport_destroy(xds_transport *t);

#endif
