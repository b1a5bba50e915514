/*
 * h2_downstream.h: the HTTP/2 downstream codec (nghttp2 server session,
 * h2c prior knowledge) for HCM listeners with codec_type AUTO (the HCM
 * hands over a connection that opens with the preface) or HTTP2. Each
 * stream is carried to the HCM as one exchange held in memory (hcm_pipe
 * in hcm.h) as fields and body bytes, so routing, pools, retries, local
 * replies and the access log are the HCM's, unchanged; this module
 * translates (pseudo-headers, :authority -> host, trailers both ways,
 * TE: trailers kept; local replies arrive as HTTP/1.1 text and are parsed)
 * and guards the connection: SETTINGS_MAX_CONCURRENT_STREAMS, flow
 * control with windows consumed only as the HCM takes the bytes, response
 * bytes taken from the HCM only up to the buffer limit (backpressure on
 * the upstream), a cap on stream resets per interval (rapid reset:
 * GOAWAY ENHANCE_YOUR_CALM and close), nghttp2's SETTINGS/PING flood
 * limits, header size limits. Frames are serialized into one buffer and
 * written in batches.
 *
 * Owns: the connection, its socket, session, streams, and the HCM side
 * of each stream's exchange (aborted when the stream ends first).
 * Threads: the accepting worker's thread only.
 */
#ifndef XDSNODE_H2_DOWNSTREAM_H
#define XDSNODE_H2_DOWNSTREAM_H

#include <stddef.h>
#include <sys/socket.h>

#include "xdsnode/listener_config.h"
#include "xdsnode/worker.h"

/* Stream resets a client may cause per interval before the connection is
 * closed (rapid reset, CVE-2023-44487). */
#define H2D_MAX_RESETS_PER_INTERVAL 200
#define H2D_RESET_INTERVAL_S 1.0
/* SETTINGS/PING frames awaiting our ACK (nghttp2 max_outbound_ack). */
#define H2D_MAX_OUTBOUND_ACK 1000

/* 1: data starts with the HTTP/2 connection preface; 0: it does not;
 * -1: too short to tell. */
int h2_preface_match(const char *data, size_t len);

/* Takes ownership of fd; `initial` holds bytes already read from it.
 * Returns 0, or -1 (fd closed). */
int h2d_connection_create(worker *w, const listener_config *cfg, int fd,
                          const struct sockaddr_storage *peer, const char *initial, size_t len);

#endif
