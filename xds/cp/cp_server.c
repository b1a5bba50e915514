/* cp_server.c: gRPC core server for ADS (see cp_server.h). */
#include "cp_server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_log.h"
#include "cp_stream.h"
#include "xdsnode/dlist.h"

#define ADS_SOTW_METHOD \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define ADS_DELTA_METHOD \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

/* istiod's keepalive enforcement (pilot/pkg/bootstrap: MinTime 15 s,
 * PermitWithoutStream true), so clients pinging as they would istiod are
 * not sent GOAWAY too_many_pings. */
#define CP_MIN_RECV_PING_INTERVAL_MS 15000

typedef enum { TAG_NEW_CALL, TAG_RECV, TAG_SEND, TAG_CLOSE, TAG_SHUTDOWN } tag_kind;

typedef struct cp_call cp_call;

typedef struct {
    tag_kind kind;
    cp_call *call;
} cp_tag;

typedef struct out_msg {
    grpc_byte_buffer *bb;
    struct out_msg *next;
} out_msg;

struct cp_call {
    cp_server *srv;
    grpc_call *call;
    cp_call *prev, *next;
    cp_tag t_recv, t_send, t_close;
    grpc_byte_buffer *recv_bb;
    grpc_byte_buffer *send_bb;
    int recv_pending, send_pending, close_pending;
    int cancelled;     /* from RECV_CLOSE_ON_SERVER */
    int done;          /* no more requests are read, no more responses sent */
    int finish;        /* send the status once the queue is empty */
    int status_sent;
    grpc_status_code status;
    char status_msg[256];
    out_msg *q_head, *q_tail;
    int streaming;     /* an ADS method (else UNIMPLEMENTED) */
    cp_stream stream;
};

struct cp_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    cp_snapshot *snap;
    cp_sequence *seq;  /* the loaded scenario's Sequence, while it runs */
    cp_call *calls;
    unsigned long next_stream_id;
    int shutting_down;
    int shutdown_done;
    /* the pending grpc_server_request_call */
    grpc_call *new_call;
    grpc_call_details new_details;
    grpc_metadata_array new_md;
    int request_pending;
    cp_tag t_new, t_shutdown;
};

/* --- calls ----------------------------------------------------------------- */

static int start_batch(cp_call *c, const grpc_op *ops, size_t n, cp_tag *tag)
{
    return grpc_call_start_batch(c->call, ops, n, tag, NULL) == GRPC_CALL_OK ? 0 : -1;
}

static void queue_free(cp_call *c)
{
    while (c->q_head != NULL) {
        out_msg *m = c->q_head;
        c->q_head = m->next;
        grpc_byte_buffer_destroy(m->bb);
        free(m);
    }
    c->q_tail = NULL;
}

/* Starts the next SEND: a queued response, else the status if finishing. */
static void call_flush(cp_call *c)
{
    grpc_op op;

    if (c->send_pending || c->status_sent)
        return;
    memset(&op, 0, sizeof(op));
    if (c->q_head != NULL && !c->done) {
        out_msg *m = c->q_head;
        c->q_head = m->next;
        if (c->q_head == NULL)
            c->q_tail = NULL;
        c->send_bb = m->bb;
        free(m);
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = c->send_bb;
    } else if (c->finish) {
        grpc_slice details = grpc_slice_from_copied_string(c->status_msg);
        op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        op.data.send_status_from_server.status = c->status;
        op.data.send_status_from_server.status_details = &details;
        c->status_sent = 1;
        c->send_pending = start_batch(c, &op, 1, &c->t_send) == 0;
        grpc_slice_unref(details);
        return;
    } else {
        return;
    }
    c->send_pending = start_batch(c, &op, 1, &c->t_send) == 0;
}

/* Ends the stream with a status, after responses already queued. */
static void call_finish(cp_call *c, grpc_status_code status, const char *msg)
{
    if (c->finish)
        return;
    c->finish = 1;
    c->status = status;
    snprintf(c->status_msg, sizeof(c->status_msg), "%s", msg);
    call_flush(c);
}

/* cp_send_fn: queues a serialized response (takes ownership of data). */
static int call_send(void *ctx, uint8_t *data, size_t len)
{
    cp_call *c = ctx;
    if (c->done || c->finish) {
        free(data);
        return 0;
    }
    out_msg *m = malloc(sizeof(*m));
    if (m == NULL) {
        free(data);
        return -1;
    }
    grpc_slice s = grpc_slice_new(data, len, free);
    m->bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    m->next = NULL;
    if (c->q_tail)
        c->q_tail->next = m;
    else
        c->q_head = m;
    c->q_tail = m;
    call_flush(c);
    return 0;
}

static void call_start_recv(cp_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_bb;
    c->recv_pending = start_batch(c, &op, 1, &c->t_recv) == 0;
}

static void call_log(cp_call *c, const char *event, json_t *extra)
{
    json_t *ev = cp_stream_event(&c->stream, event, NULL);
    if (extra != NULL)
        json_object_update(ev, extra);
    json_decref(extra);
    cp_log_emit(ev);
}

static void call_maybe_free(cp_call *c)
{
    if (c->recv_pending || c->send_pending || c->close_pending)
        return;
    cp_server *srv = c->srv;
    DLIST_REMOVE(srv->calls, c);
    queue_free(c);
    cp_stream_clear(&c->stream);
    grpc_call_unref(c->call);
    free(c);
}

/* A new call: initial metadata + close watch, then the first RECV. */
static void call_open(cp_server *srv, grpc_call *gcall, const grpc_call_details *details)
{
    cp_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        grpc_call_cancel(gcall, NULL);
        grpc_call_unref(gcall);
        return;
    }
    char *method = grpc_slice_to_c_string(details->method);
    int delta = strcmp(method, ADS_DELTA_METHOD) == 0;
    c->streaming = delta || strcmp(method, ADS_SOTW_METHOD) == 0;
    c->srv = srv;
    c->call = gcall;
    c->t_recv = (cp_tag){TAG_RECV, c};
    c->t_send = (cp_tag){TAG_SEND, c};
    c->t_close = (cp_tag){TAG_CLOSE, c};
    cp_stream_init(&c->stream, ++srv->next_stream_id, delta, call_send, c);
    DLIST_INSERT_HEAD(srv->calls, c);

    char *peer = grpc_call_get_peer(gcall);
    call_log(c, "stream_open", json_pack("{s:s, s:s}", "method", method, "peer", peer));
    gpr_free(peer);

    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &c->cancelled;
    c->close_pending = start_batch(c, ops, 2, &c->t_close) == 0;
    if (!c->streaming) {
        char msg[300];
        snprintf(msg, sizeof(msg), "unknown method %.250s", method);
        call_finish(c, GRPC_STATUS_UNIMPLEMENTED, msg);
    } else {
        call_start_recv(c);
    }
    gpr_free(method);
    call_maybe_free(c);
}

static void call_on_recv(cp_call *c, int success)
{
    char err[256];

    c->recv_pending = 0;
    if (!success || c->recv_bb == NULL) {
        /* success with no message: the client half-closed */
        if (success)
            call_finish(c, GRPC_STATUS_OK, "");
        return;
    }
    grpc_byte_buffer_reader r;
    grpc_slice s = grpc_empty_slice();
    int ok = grpc_byte_buffer_reader_init(&r, c->recv_bb);
    if (ok) {
        s = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
    }
    grpc_byte_buffer_destroy(c->recv_bb);
    c->recv_bb = NULL;
    int rc = ok ? cp_stream_on_request(&c->stream, c->srv->snap, GRPC_SLICE_START_PTR(s),
                                       GRPC_SLICE_LENGTH(s), err, sizeof(err))
                : -1;
    grpc_slice_unref(s);
    if (rc != 0) {
        if (!ok)
            snprintf(err, sizeof(err), "cannot read the request");
        call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, err);
        return;
    }
    if (!c->done && !c->finish)
        call_start_recv(c);
}

static void call_on_send(cp_call *c, int success)
{
    c->send_pending = 0;
    if (c->send_bb) {
        grpc_byte_buffer_destroy(c->send_bb);
        c->send_bb = NULL;
    }
    if (!success) {
        c->done = 1;
        queue_free(c);
        return;
    }
    call_flush(c);
}

static void call_on_close(cp_call *c)
{
    c->close_pending = 0;
    c->done = 1;
    queue_free(c);
    json_t *extra = json_pack("{s:b}", "cancelled", c->cancelled);
    if (c->status_sent)
        json_object_set_new(extra, "status", json_integer(c->status));
    call_log(c, "stream_closed", extra);
}

/* --- server ---------------------------------------------------------------- */

static void server_request_call(cp_server *srv)
{
    if (srv->shutting_down)
        return;
    grpc_call_details_init(&srv->new_details);
    grpc_metadata_array_init(&srv->new_md);
    srv->new_call = NULL;
    grpc_call_error e = grpc_server_request_call(srv->server, &srv->new_call,
                                                 &srv->new_details, &srv->new_md, srv->cq,
                                                 srv->cq, &srv->t_new);
    srv->request_pending = e == GRPC_CALL_OK;
    if (!srv->request_pending) {
        grpc_call_details_destroy(&srv->new_details);
        grpc_metadata_array_destroy(&srv->new_md);
    }
}

static void server_on_new_call(cp_server *srv, int success)
{
    srv->request_pending = 0;
    if (success && srv->new_call != NULL)
        call_open(srv, srv->new_call, &srv->new_details);
    else if (srv->new_call != NULL)
        grpc_call_unref(srv->new_call);
    grpc_call_details_destroy(&srv->new_details);
    grpc_metadata_array_destroy(&srv->new_md);
    server_request_call(srv);
}

static void server_push(cp_server *srv, cp_snapshot *snap);

/* Sequence: whether every stream sent the current version ACKed it (per
 * type, at least one answer overall). 1 yes, 0 not yet, -1 NACKed. */
static int sequence_acked(const cp_server *srv)
{
    int acked = 0;
    for (const cp_call *c = srv->calls; c != NULL; c = c->next) {
        if (!c->streaming || c->done || c->finish)
            continue;
        for (int t = 0; t < CP_TYPE_COUNT; t++) {
            const cp_type_state *st = &c->stream.types[t];
            if (st->sent_version == NULL || strcmp(st->sent_version, srv->snap->version) != 0)
                continue;
            if (st->answer == CP_ANSWER_NACK)
                return -1;
            if (st->answer != CP_ANSWER_ACK)
                return 0;
            acked = 1;
        }
    }
    return acked;
}

static void sequence_end(cp_server *srv, const char *event)
{
    json_t *ev = cp_log_event_new(event);
    json_object_set_new(ev, "version", json_string(srv->snap->version));
    json_object_set_new(ev, "pushed", json_integer(srv->seq->next - 1));
    json_object_set_new(ev, "count", json_integer(srv->seq->count));
    cp_log_emit(ev);
    cp_sequence_free(srv->seq);
    srv->seq = NULL;
}

/* Pushes the sequence's next version once the current one is ACKed. */
static void sequence_advance(cp_server *srv)
{
    cp_snapshot *next;
    if (srv->seq == NULL || srv->shutting_down)
        return;
    int acked = sequence_acked(srv);
    if (acked < 0) {
        sequence_end(srv, "sequence_stopped");
        return;
    }
    if (acked == 0)
        return;
    int rc = cp_sequence_next(srv->seq, &next);
    if (rc == 0)
        server_push(srv, next);
    else
        sequence_end(srv, rc > 0 ? "sequence_done" : "sequence_stopped");
}

static void server_on_event(cp_server *srv, const grpc_event *ev)
{
    cp_tag *tag = ev->tag;
    cp_call *c = tag->call;

    switch (tag->kind) {
    case TAG_NEW_CALL:
        server_on_new_call(srv, ev->success);
        return;
    case TAG_SHUTDOWN:
        srv->shutdown_done = 1;
        return;
    case TAG_RECV:
        call_on_recv(c, ev->success);
        break;
    case TAG_SEND:
        call_on_send(c, ev->success);
        break;
    case TAG_CLOSE:
        call_on_close(c);
        break;
    }
    call_maybe_free(c);
    sequence_advance(srv);
}

void cp_server_poll(cp_server *srv, int timeout_ms)
{
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv->cq, deadline, NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return;
        server_on_event(srv, &ev);
        /* then drain whatever else is ready without waiting */
        deadline = gpr_time_0(GPR_CLOCK_MONOTONIC);
    }
}

int cp_server_start(const char *address, cp_snapshot *snap, cp_server **out, int *port,
                    char *err, size_t errlen)
{
    cp_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        cp_snapshot_free(snap);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    grpc_init();
    srv->snap = snap;
    srv->seq = snap->sequence;
    snap->sequence = NULL;
    srv->t_new = (cp_tag){TAG_NEW_CALL, NULL};
    srv->t_shutdown = (cp_tag){TAG_SHUTDOWN, NULL};
    grpc_arg args[4];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = -1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = -1;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
    args[2].value.integer = CP_MIN_RECV_PING_INTERVAL_MS;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
    args[3].value.integer = 1;
    grpc_channel_args chargs = {4, args};
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    srv->server = grpc_server_create(&chargs, NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    *port = grpc_server_add_http2_port(srv->server, address, creds);
    grpc_server_credentials_release(creds);
    if (*port == 0) {
        snprintf(err, errlen, "cannot listen on %s", address);
        srv->shutdown_done = 1; /* never started: nothing to notify */
        cp_server_stop(srv);
        return -1;
    }
    grpc_server_start(srv->server);
    server_request_call(srv);
    *out = srv;
    return 0;
}

void cp_server_set_snapshot(cp_server *srv, cp_snapshot *snap)
{
    cp_sequence_free(srv->seq);
    srv->seq = snap->sequence;
    snap->sequence = NULL;
    if (srv->seq != NULL) {
        json_t *ev = cp_log_event_new("sequence_started");
        json_object_set_new(ev, "version", json_string(snap->version));
        json_object_set_new(ev, "count", json_integer(srv->seq->count));
        cp_log_emit(ev);
    }
    server_push(srv, snap);
}

/* Replaces the served snapshot and pushes it to every stream. */
static void server_push(cp_server *srv, cp_snapshot *snap)
{
    cp_snapshot_free(srv->snap);
    srv->snap = snap;
    for (cp_call *c = srv->calls; c != NULL; c = c->next) {
        if (!c->streaming || c->done || c->finish)
            continue;
        if (cp_stream_push(&c->stream, snap) != 0)
            call_finish(c, GRPC_STATUS_INTERNAL, "cannot build a response");
    }
}

static void server_drain(cp_server *srv)
{
    gpr_timespec forever = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    while (!srv->shutdown_done || srv->calls != NULL || srv->request_pending) {
        grpc_event ev = grpc_completion_queue_next(srv->cq, forever, NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        server_on_event(srv, &ev);
    }
}

void cp_server_stop(cp_server *srv)
{
    srv->shutting_down = 1;
    if (!srv->shutdown_done) {
        grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->t_shutdown);
        grpc_server_cancel_all_calls(srv->server);
    }
    server_drain(srv);
    grpc_server_destroy(srv->server);
    grpc_completion_queue_shutdown(srv->cq);
    while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(srv->cq);
    cp_snapshot_free(srv->snap);
    cp_sequence_free(srv->seq);
    free(srv);
    grpc_shutdown();
}
