/*
 * cp_stream.h: the xDS protocol state of one ADS stream, without gRPC:
 * requests in (serialized DiscoveryRequest / DeltaDiscoveryRequest),
 * responses out through a send callback. SotW (cp_sotw.c) and Delta
 * (cp_delta.c) share the struct and the nonce source (cp_stream.c).
 *
 * Behaviour (go-control-plane / istiod-like):
 *  - CDS is wildcard (no names yet, or "*"); EDS answers the names asked
 *    for, with a ClusterLoadAssignment holding only cluster_name for a name
 *    the scenario lacks (as istiod does), except names the scenario
 *    withholds: those are left out, and a response left with nothing to
 *    say because of them is not sent.
 *  - SotW: a request whose response_nonce is not the latest sent for its
 *    type is stale and ignored; an ACK or NACK is logged and answered only
 *    when the subscription changed; every response has the snapshot version
 *    and a fresh nonce.
 *  - Delta: per type the versions the client holds (seeded from
 *    initial_resource_versions); responses carry only new or changed
 *    resources and removed_resources; subscription changes are honoured
 *    even with a stale nonce. Each response not yet answered remembers what
 *    the client held before it for the names it changed; an ACK forgets
 *    that, a NACK keeps it to be put back at the next push, so the push
 *    resends what the client rejected and the client's own requests in
 *    between do not (cp_pending.c).
 *
 * Owns: its maps and names; cp_stream_clear() frees them.
 * Threads: the control plane's one thread.
 */
#ifndef XDSNODE_CP_STREAM_H
#define XDSNODE_CP_STREAM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_snapshot.h"

#define CP_NONCE_LEN 48

/* Delta: unanswered responses kept per type. When one more is sent, the
 * oldest is treated as NACKed (at worst the next push resends what the
 * client already holds). */
#define CP_PENDING_MAX 8

/* Takes ownership of data (malloc'd). Returns 0, or -1 if it cannot queue. */
typedef int (*cp_send_fn)(void *ctx, uint8_t *data, size_t len);

/* Delta: a response the client has not ACKed or NACKed yet, and for each
 * name whose held version it changed, the version held before it (JSON
 * null: not held). */
typedef struct {
    char nonce[CP_NONCE_LEN];
    json_t *prior;
} cp_pending;

typedef struct {
    int active;            /* a request for this type arrived */
    int wildcard;
    int named;             /* SotW: the client has listed names explicitly */
    json_t *names;         /* explicit subscriptions: name -> true */
    json_t *known;         /* Delta: name -> version the client holds */
    json_t *undo;          /* Delta: NACKed, put back in known at the next
                              push: name -> version held before, or null */
    char nonce[CP_NONCE_LEN]; /* latest nonce sent, "" before the first */
    cp_pending pending[CP_PENDING_MAX]; /* Delta: unanswered, oldest first */
    size_t n_pending;
    char *sent_version;    /* snapshot version of the latest response sent */
    int answer;            /* to the latest response: CP_ANSWER_* */
} cp_type_state;

enum { CP_ANSWER_NONE = 0, CP_ANSWER_ACK, CP_ANSWER_NACK };

typedef struct {
    unsigned long id;
    int delta;
    int node_seen;
    cp_send_fn send;
    void *send_ctx;
    cp_type_state types[CP_TYPE_COUNT];
} cp_stream;

void cp_stream_init(cp_stream *s, unsigned long id, int delta, cp_send_fn send, void *ctx);
void cp_stream_clear(cp_stream *s);

/* Handles one request message. -1 with err for a message that does not
 * parse (the caller ends the stream with INVALID_ARGUMENT). */
int cp_stream_on_request(cp_stream *s, const cp_snapshot *snap, const uint8_t *data,
                         size_t len, char *err, size_t errlen);

/* Pushes a new snapshot on every type the stream subscribed to. */
int cp_stream_push(cp_stream *s, const cp_snapshot *snap);

/* --- shared by cp_sotw.c and cp_delta.c --- */
int cp_sotw_on_request(cp_stream *s, const cp_snapshot *snap, const uint8_t *data, size_t len,
                       char *err, size_t errlen);
int cp_sotw_push(cp_stream *s, const cp_snapshot *snap);
int cp_delta_on_request(cp_stream *s, const cp_snapshot *snap, const uint8_t *data,
                        size_t len, char *err, size_t errlen);
int cp_delta_push(cp_stream *s, const cp_snapshot *snap);

/* --- Delta unanswered responses (cp_pending.c) --- */

/* Notes in prior that `name` was held at `version` (NULL: not held) before
 * the response being built, unless already noted. */
int cp_pending_note(json_t *prior, const char *name, const char *version);
/* Remembers a sent response (takes ownership of prior, also on failure). */
int cp_pending_add(cp_type_state *st, const char *nonce, json_t *prior);
/* Index of the unanswered response with this nonce, or -1. */
int cp_pending_find(const cp_type_state *st, const char *nonce);
/* Removes the response at index (and the older ones: the client answered
 * those first) into *out; the caller rejects it or frees its prior. */
void cp_pending_take(cp_type_state *st, int index, cp_pending *out);
/* The client rejected p: for a name a later unanswered response changed,
 * what it held before p becomes what it held before that one; the other
 * names go to st->undo. Frees p's prior. */
void cp_pending_reject(cp_type_state *st, cp_pending *p);
/* Before a push: puts st->undo back into st->known and empties it. */
void cp_pending_undo(cp_type_state *st);
void cp_pending_clear(cp_type_state *st);

/* A response carrying snapshot `version` was just sent on this type (its
 * answer is not known yet). Returns 0, or -1 out of memory. */
int cp_stream_note_sent(cp_type_state *st, const char *version);

/* A message packed into a malloc'd buffer (*len bytes), or NULL. */
struct ProtobufCMessage;
uint8_t *cp_pack(const struct ProtobufCMessage *m, size_t *len);
/* Notes the response (cp_stream_note_sent) and sends buf, which the
 * stream's send takes over (freed here if the note fails). Returns what
 * send returns, or -1. */
int cp_stream_deliver(cp_stream *s, cp_type_state *st, const char *version, uint8_t *buf,
                      size_t len);
/* The client answered the response with `nonce`: recorded if it is the
 * latest one sent on this type. */
void cp_stream_note_answer(cp_type_state *st, const char *nonce, int nack);

/* A fresh nonce, unique for this process run and across restarts. */
void cp_stream_next_nonce(char out[CP_NONCE_LEN]);

/* A log event with "stream", "mode" and "type_url" filled. */
json_t *cp_stream_event(const cp_stream *s, const char *event, const char *type_url);

/* Adds "node" (id, cluster, user_agent_name) to ev once per stream. */
struct Envoy__Config__Core__V3__Node;
void cp_stream_log_node(cp_stream *s, json_t *ev, const struct Envoy__Config__Core__V3__Node *node);

/* Adds "error_detail" {code, message} when status is non-NULL. */
struct Google__Rpc__Status;
void cp_stream_log_error_detail(json_t *ev, const struct Google__Rpc__Status *status);

/* A serialized ClusterLoadAssignment with only cluster_name set, as a
 * resource (caller frees name and data). */
int cp_empty_cla(const char *name, cp_resource *out);

#endif

#ifndef XDSNODE_CP_BATCH
#define XDSNODE_CP_BATCH
/* The resources of one response being built: borrowed from the snapshot,
 * or owned (empty ClusterLoadAssignments), plus removed names (Delta), and
 * how many wanted names the scenario withholds. */
typedef struct {
    const cp_resource **items;
    size_t n, cap;
    cp_resource **owned;
    size_t n_owned, cap_owned;
    char **removed;
    size_t n_removed, cap_removed;
    size_t n_withheld;
} cp_batch;

int cp_batch_add(cp_batch *b, const cp_resource *r);
/* Adds the snapshot's resource `name`, or for EDS an empty CLA; returns the
 * resource added, or NULL (not found for CDS, or out of memory). */
const cp_resource *cp_batch_add_named(cp_batch *b, const cp_snapshot *snap, cp_type type,
                                      const char *name);
int cp_batch_remove(cp_batch *b, const char *name);
void cp_batch_free(cp_batch *b);
/* Sorted copy of a json object's keys (caller frees the array only). */
const char **cp_sorted_keys(json_t *obj, size_t *n);
#endif
