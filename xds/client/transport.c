/* transport.c: one gRPC bidi stream, completion queue on its own thread,
 * events handed to the main libev loop (see xds_transport.h). */
#include "xdsnode/xds_transport.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/log.h"

typedef enum { OP_START, OP_RECV, OP_SEND, OP_STATUS } op_kind;

typedef struct stream stream;

typedef struct {
    op_kind kind;
    stream *s;
} op_tag;

typedef struct out_msg {
    struct out_msg *next;
    size_t len;
    uint8_t data[];
} out_msg;

struct stream {
    xds_transport *t;
    grpc_call *call;
    int refs;   /* outstanding batches + 1 while it is the transport's stream */
    int closed; /* status received */
    op_tag start_tag, recv_tag, send_tag, status_tag;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    grpc_byte_buffer *recv_bb;
    grpc_byte_buffer *send_bb; /* in flight, NULL when none */
    out_msg *queue_head, *queue_tail;
};

/* A completion handed from the transport thread to the main loop. */
typedef struct event {
    struct event *next;
    op_tag *tag;
    int success;
} event;

struct xds_transport {
    struct ev_loop *loop;
    ev_async wake;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    event *ev_head, *ev_tail; /* guarded by lock */
    grpc_channel *channel;
    grpc_completion_queue *cq;
    stream *current; /* open stream, or NULL */
    xds_transport_callbacks cbs;
    void *ctx;
    int destroying;
};

/* --- gRPC logging into ours --------------------------------------------- */

static void grpc_log_to_ours(gpr_log_func_args *args)
{
    log_level lvl = args->severity == GPR_LOG_SEVERITY_ERROR ? LOG_DEBUG : LOG_TRACE;
    LOG_AT(lvl, "grpc: %s", args->message);
}

/* --- the transport thread ------------------------------------------------- */

static void push_event(xds_transport *t, op_tag *tag, int success)
{
    event *e = malloc(sizeof(*e));
    if (e == NULL) {
        log_critical("xds transport: out of memory queueing a gRPC event");
        abort();
    }
    e->next = NULL;
    e->tag = tag;
    e->success = success;
    pthread_mutex_lock(&t->lock);
    if (t->ev_tail)
        t->ev_tail->next = e;
    else
        t->ev_head = e;
    t->ev_tail = e;
    pthread_mutex_unlock(&t->lock);
    ev_async_send(t->loop, &t->wake);
}

static void *cq_thread(void *arg)
{
    xds_transport *t = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            push_event(t, ev.tag, ev.success);
    }
    return NULL;
}

/* --- streams -------------------------------------------------------------- */

static void stream_unref(stream *s)
{
    if (--s->refs > 0)
        return;
    while (s->queue_head) {
        out_msg *m = s->queue_head;
        s->queue_head = m->next;
        free(m);
    }
    if (s->recv_bb)
        grpc_byte_buffer_destroy(s->recv_bb);
    if (s->send_bb)
        grpc_byte_buffer_destroy(s->send_bb);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    grpc_slice_unref(s->details);
    gpr_free((void *)s->error_string);
    if (s->call)
        grpc_call_unref(s->call);
    free(s);
}

static int start_batch(stream *s, grpc_op *ops, size_t n, op_tag *tag)
{
    s->refs++;
    grpc_call_error rc = grpc_call_start_batch(s->call, ops, n, tag, NULL);
    if (rc != GRPC_CALL_OK) {
        s->refs--;
        log_error("xds transport: start_batch failed (%d)", (int)rc);
        return -1;
    }
    return 0;
}

static void arm_recv(stream *s)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_bb;
    start_batch(s, &op, 1, &s->recv_tag);
}

static void send_next(stream *s)
{
    if (s->send_bb != NULL || s->queue_head == NULL || s->closed)
        return;
    out_msg *m = s->queue_head;
    s->queue_head = m->next;
    if (s->queue_head == NULL)
        s->queue_tail = NULL;
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)m->data, m->len);
    s->send_bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    free(m);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->send_bb;
    if (start_batch(s, &op, 1, &s->send_tag) != 0) {
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
    }
}

static void deliver_message(xds_transport *t, stream *s)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, s->recv_bb)) {
        grpc_byte_buffer_destroy(s->recv_bb);
        s->recv_bb = NULL;
        return;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(s->recv_bb);
    s->recv_bb = NULL;
    if (t->current == s && !t->destroying)
        t->cbs.on_message(t->ctx, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
    grpc_slice_unref(all);
}

static void on_status(xds_transport *t, stream *s)
{
    s->closed = 1;
    if (t->current != s)
        return;
    t->current = NULL;
    char *details = grpc_slice_to_c_string(s->details);
    if (!t->destroying)
        t->cbs.on_closed(t->ctx, (int)s->status, details);
    gpr_free(details);
    stream_unref(s); /* the transport's reference */
}

static void handle_event(xds_transport *t, op_tag *tag, int success)
{
    stream *s = tag->s;
    switch (tag->kind) {
    case OP_START:
        if (success && t->current == s && !t->destroying) {
            t->cbs.on_open(t->ctx);
            if (t->current == s)
                arm_recv(s);
        }
        break;
    case OP_RECV:
        if (success && s->recv_bb != NULL) {
            deliver_message(t, s);
            if (t->current == s && !s->closed)
                arm_recv(s);
        }
        break;
    case OP_SEND:
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
        if (success && t->current == s)
            send_next(s);
        break;
    case OP_STATUS:
        on_status(t, s);
        break;
    }
    stream_unref(s); /* the batch's reference */
}

static event *take_events(xds_transport *t)
{
    pthread_mutex_lock(&t->lock);
    event *list = t->ev_head;
    t->ev_head = t->ev_tail = NULL;
    pthread_mutex_unlock(&t->lock);
    return list;
}

static void run_events(xds_transport *t)
{
    for (event *e = take_events(t); e != NULL;) {
        event *next = e->next;
        handle_event(t, e->tag, e->success);
        free(e);
        e = next;
        if (e == NULL)
            e = take_events(t);
    }
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    run_events(w->data);
}

/* --- public API ------------------------------------------------------------- */

static grpc_arg int_arg(const char *key, int value)
{
    grpc_arg a;
    memset(&a, 0, sizeof(a));
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)key;
    a.value.integer = value;
    return a;
}

static grpc_channel *make_channel(const char *target)
{
    grpc_arg args[7];
    int n = 0;
    args[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
    args[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
    args[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, XDS_KEEPALIVE_TIME_MS);
    args[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, XDS_KEEPALIVE_TIMEOUT_MS);
    args[n++] = int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, XDS_BACKOFF_INITIAL_MS);
    args[n++] = int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, XDS_BACKOFF_INITIAL_MS);
    args[n++] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, XDS_BACKOFF_MAX_MS);
    grpc_channel_args cargs = {.num_args = (size_t)n, .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return ch;
}

int xds_transport_create(struct ev_loop *loop, const char *target,
                         const xds_transport_callbacks *cbs, void *ctx,
                         xds_transport **out, char *err, size_t errlen)
{
    xds_transport *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    gpr_set_log_function(grpc_log_to_ours);
    grpc_init();
    t->loop = loop;
    t->cbs = *cbs;
    t->ctx = ctx;
    pthread_mutex_init(&t->lock, NULL);
    ev_async_init(&t->wake, on_wake);
    t->wake.data = t;
    ev_async_start(loop, &t->wake);
    t->cq = grpc_completion_queue_create_for_next(NULL);
    t->channel = make_channel(target);
    if (t->channel == NULL || pthread_create(&t->thread, NULL, cq_thread, t) != 0) {
        snprintf(err, errlen, "cannot create the gRPC channel to %s", target);
        xds_transport_destroy(t);
        return -1;
    }
    t->thread_started = 1;
    *out = t;
    return 0;
}

static stream *stream_new(xds_transport *t, const char *method)
{
    stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->t = t;
    s->refs = 1;
    s->start_tag = (op_tag){OP_START, s};
    s->recv_tag = (op_tag){OP_RECV, s};
    s->send_tag = (op_tag){OP_SEND, s};
    s->status_tag = (op_tag){OP_STATUS, s};
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    grpc_slice m = grpc_slice_from_copied_string(method);
    s->call = grpc_channel_create_call(t->channel, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq, m, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(m);
    if (s->call == NULL) {
        stream_unref(s);
        return NULL;
    }
    return s;
}

int xds_transport_start(xds_transport *t, const char *method)
{
    if (t->current != NULL)
        return -1;
    stream *s = stream_new(t, method);
    if (s == NULL)
        return -1;
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    grpc_op st;
    memset(&st, 0, sizeof(st));
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    st.data.recv_status_on_client.status = &s->status;
    st.data.recv_status_on_client.status_details = &s->details;
    st.data.recv_status_on_client.error_string = &s->error_string;
    if (start_batch(s, ops, 2, &s->start_tag) != 0 || start_batch(s, &st, 1, &s->status_tag) != 0) {
        grpc_call_cancel(s->call, NULL);
        stream_unref(s);
        return -1;
    }
    t->current = s;
    return 0;
}

int xds_transport_send(xds_transport *t, const uint8_t *data, size_t len)
{
    stream *s = t->current;
    if (s == NULL || s->closed)
        return -1;
    out_msg *m = malloc(sizeof(*m) + len);
    if (m == NULL)
        return -1;
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    if (s->queue_tail)
        s->queue_tail->next = m;
    else
        s->queue_head = m;
    s->queue_tail = m;
    send_next(s);
    return 0;
}

int xds_transport_is_open(const xds_transport *t) { return t->current != NULL; }

void xds_transport_cancel(xds_transport *t)
{
    if (t->current)
        grpc_call_cancel(t->current->call, NULL);
}

void xds_transport_destroy(xds_transport *t)
{
    if (t == NULL)
        return;
    t->destroying = 1;
    if (t->current)
        grpc_call_cancel(t->current->call, NULL);
    if (t->channel)
        grpc_channel_destroy(t->channel);
    grpc_completion_queue_shutdown(t->cq);
    if (t->thread_started)
        pthread_join(t->thread, NULL);
    run_events(t); /* every outstanding batch has completed by now */
    grpc_completion_queue_destroy(t->cq);
    ev_async_stop(t->loop, &t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
    grpc_shutdown();
}
