/* cp_stream.c: stream state shared by SotW and Delta (see cp_stream.h). */
#include "cp_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cp_log.h"
#include "xdsnode/envoy_types.h"
#include "google/rpc/status.pb-c.h"

void cp_stream_init(cp_stream *s, unsigned long id, int delta, cp_send_fn send, void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->delta = delta;
    s->send = send;
    s->send_ctx = ctx;
    for (int t = 0; t < CP_TYPE_COUNT; t++) {
        s->types[t].names = json_object();
        s->types[t].known = json_object();
        s->types[t].undo = json_object();
    }
}

void cp_stream_clear(cp_stream *s)
{
    for (int t = 0; t < CP_TYPE_COUNT; t++) {
        cp_pending_clear(&s->types[t]);
        json_decref(s->types[t].names);
        json_decref(s->types[t].known);
        json_decref(s->types[t].undo);
        s->types[t].names = s->types[t].known = s->types[t].undo = NULL;
        free(s->types[t].sent_version);
        s->types[t].sent_version = NULL;
    }
}

int cp_stream_note_sent(cp_type_state *st, const char *version)
{
    char *copy = strdup(version);
    if (copy == NULL)
        return -1;
    free(st->sent_version);
    st->sent_version = copy;
    st->answer = CP_ANSWER_NONE;
    return 0;
}

void cp_stream_note_answer(cp_type_state *st, const char *nonce, int nack)
{
    if (nonce[0] != '\0' && strcmp(nonce, st->nonce) == 0)
        st->answer = nack ? CP_ANSWER_NACK : CP_ANSWER_ACK;
}

int cp_stream_on_request(cp_stream *s, const cp_snapshot *snap, const uint8_t *data,
                         size_t len, char *err, size_t errlen)
{
    return s->delta ? cp_delta_on_request(s, snap, data, len, err, errlen)
                    : cp_sotw_on_request(s, snap, data, len, err, errlen);
}

int cp_stream_push(cp_stream *s, const cp_snapshot *snap)
{
    return s->delta ? cp_delta_push(s, snap) : cp_sotw_push(s, snap);
}

/* Nonces: a per-run random prefix and a counter, so nonces never repeat
 * within a run and are unlikely to match an older run's. */
void cp_stream_next_nonce(char out[CP_NONCE_LEN])
{
    static unsigned long long counter;
    static unsigned prefix;

    if (prefix == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        prefix = (unsigned)(ts.tv_nsec ^ ts.tv_sec ^ ((unsigned)getpid() << 16)) | 1u;
    }
    snprintf(out, CP_NONCE_LEN, "%08x-%llu", prefix, ++counter);
}

json_t *cp_stream_event(const cp_stream *s, const char *event, const char *type_url)
{
    json_t *ev = cp_log_event_new(event);
    json_object_set_new(ev, "stream", json_integer((json_int_t)s->id));
    json_object_set_new(ev, "mode", json_string(s->delta ? "delta" : "sotw"));
    if (type_url != NULL)
        json_object_set_new(ev, "type_url", json_string(type_url));
    return ev;
}

uint8_t *cp_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf != NULL)
        protobuf_c_message_pack(m, buf);
    return buf;
}

int cp_stream_deliver(cp_stream *s, cp_type_state *st, const char *version, uint8_t *buf,
                      size_t len)
{
    if (cp_stream_note_sent(st, version) != 0) {
        free(buf);
        return -1;
    }
    return s->send(s->send_ctx, buf, len);
}

void cp_stream_log_node(cp_stream *s, json_t *ev, const pb_node *node)
{
    if (node == NULL || s->node_seen)
        return;
    s->node_seen = 1;
    json_object_set_new(ev, "node",
                        json_pack("{s:s, s:s, s:s}", "id", node->id, "cluster", node->cluster,
                                  "user_agent_name", node->user_agent_name));
}

void cp_stream_log_error_detail(json_t *ev, const Google__Rpc__Status *status)
{
    if (status == NULL)
        return;
    json_object_set_new(ev, "error_detail", json_pack("{s:i, s:s}", "code", (int)status->code,
                                                      "message", status->message));
}

int cp_empty_cla(const char *name, cp_resource *out)
{
    pb_cla cla = ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    cla.cluster_name = (char *)name;
    size_t len = protobuf_c_message_get_packed_size(&cla.base);

    memset(out, 0, sizeof(*out));
    out->name = strdup(name);
    out->data = malloc(len ? len : 1);
    if (out->name == NULL || out->data == NULL) {
        free(out->name);
        free(out->data);
        return -1;
    }
    out->len = protobuf_c_message_pack(&cla.base, out->data);
    cp_hash_bytes(out->data, out->len, out->version);
    return 0;
}

/* --- response batches --------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

int cp_batch_add(cp_batch *b, const cp_resource *r)
{
    if (grow((void **)&b->items, &b->cap, b->n + 1, sizeof(*b->items)) != 0)
        return -1;
    b->items[b->n++] = r;
    return 0;
}

const cp_resource *cp_batch_add_named(cp_batch *b, const cp_snapshot *snap, cp_type type,
                                      const char *name)
{
    const cp_resource *found = cp_snapshot_find(snap, type, name);
    if (found != NULL)
        return cp_batch_add(b, found) == 0 ? found : NULL;
    if (type != CP_TYPE_CLA)
        return NULL;
    if (grow((void **)&b->owned, &b->cap_owned, b->n_owned + 1, sizeof(*b->owned)) != 0)
        return NULL;
    cp_resource *r = malloc(sizeof(*r));
    if (r == NULL || cp_empty_cla(name, r) != 0) {
        free(r);
        return NULL;
    }
    b->owned[b->n_owned++] = r;
    return cp_batch_add(b, r) == 0 ? r : NULL;
}

int cp_batch_remove(cp_batch *b, const char *name)
{
    if (grow((void **)&b->removed, &b->cap_removed, b->n_removed + 1, sizeof(*b->removed)) != 0)
        return -1;
    b->removed[b->n_removed] = strdup(name);
    return b->removed[b->n_removed++] ? 0 : -1;
}

void cp_batch_free(cp_batch *b)
{
    for (size_t i = 0; i < b->n_owned; i++) {
        free(b->owned[i]->name);
        free(b->owned[i]->data);
        free(b->owned[i]);
    }
    for (size_t i = 0; i < b->n_removed; i++)
        free(b->removed[i]);
    free(b->owned);
    free(b->removed);
    free(b->items);
    memset(b, 0, sizeof(*b));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **cp_sorted_keys(json_t *obj, size_t *n)
{
    size_t count = json_object_size(obj), i = 0;
    const char **keys = malloc((count ? count : 1) * sizeof(*keys));
    const char *key;
    json_t *value;

    if (keys == NULL)
        return NULL;
    json_object_foreach(obj, key, value) {
        (void)value;
        keys[i++] = key;
    }
    qsort(keys, i, sizeof(*keys), cmp_str);
    *n = i;
    return keys;
}
