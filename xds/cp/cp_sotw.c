/* cp_sotw.c: State-of-the-World ADS, one stream (see cp_stream.h). */
#include <stdlib.h>
#include <string.h>

#include "cp_log.h"
#include "cp_stream.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "xdsnode/envoy_types.h"

typedef Envoy__Service__Discovery__V3__DiscoveryRequest pb_request;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse pb_response;

/* Adds the resource (or EDS placeholder) unless the scenario withholds it;
 * NULL names a resource of the wildcard set. */
static int sotw_add(cp_batch *b, const cp_snapshot *snap, cp_type type, const cp_resource *r,
                    const char *name)
{
    if (cp_snapshot_withholds(snap, type, r ? r->name : name)) {
        b->n_withheld++;
        return 0;
    }
    if (r != NULL)
        return cp_batch_add(b, r);
    if (cp_batch_add_named(b, snap, type, name) == NULL && type == CP_TYPE_CLA)
        return -1;
    return 0;
}

/* Fills b with what a response for this type carries now. */
static int sotw_collect(const cp_type_state *st, const cp_snapshot *snap, cp_type type,
                        cp_batch *b)
{
    const cp_resource_set *set = &snap->types[type];

    if (st->wildcard) {
        for (size_t i = 0; i < set->n; i++)
            if (sotw_add(b, snap, type, &set->items[i], NULL) != 0)
                return -1;
        return 0;
    }
    size_t n;
    const char **names = cp_sorted_keys(st->names, &n);
    int rc = names ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sotw_add(b, snap, type, NULL, names[i]);
    free(names);
    return rc;
}

static void log_response(cp_stream *s, const char *type_url, const char *version,
                         const char *nonce, const cp_batch *b, size_t bytes)
{
    json_t *ev = cp_stream_event(s, "response", type_url);
    json_t *names = json_array();

    for (size_t i = 0; i < b->n; i++)
        json_array_append_new(names, json_string(b->items[i]->name));
    json_object_set_new(ev, "version_info", json_string(version));
    json_object_set_new(ev, "nonce", json_string(nonce));
    json_object_set_new(ev, "resources", names);
    json_object_set_new(ev, "bytes", json_integer((json_int_t)bytes));
    cp_log_emit(ev);
}

/* Packs and queues a DiscoveryResponse with b's resources. */
static int sotw_send(cp_stream *s, cp_type_state *st, const cp_snapshot *snap, cp_type type,
                     const cp_batch *b)
{
    const char *url = cp_type_url(type);
    pb_response resp = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    pb_any *anys = calloc(b->n ? b->n : 1, sizeof(*anys));
    pb_any **ptrs = calloc(b->n ? b->n : 1, sizeof(*ptrs));
    int rc = -1;

    if (anys == NULL || ptrs == NULL)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        google__protobuf__any__init(&anys[i]);
        anys[i].type_url = (char *)url;
        anys[i].value.data = b->items[i]->data;
        anys[i].value.len = b->items[i]->len;
        ptrs[i] = &anys[i];
    }
    cp_stream_next_nonce(st->nonce);
    resp.version_info = snap->version;
    resp.type_url = (char *)url;
    resp.nonce = st->nonce;
    resp.n_resources = b->n;
    resp.resources = ptrs;
    size_t len;
    uint8_t *buf = cp_pack(&resp.base, &len);
    if (buf == NULL)
        goto out;
    log_response(s, url, snap->version, st->nonce, b, len);
    rc = cp_stream_deliver(s, st, snap->version, buf, len);
out:
    free(anys);
    free(ptrs);
    return rc;
}

static int sotw_respond(cp_stream *s, const cp_snapshot *snap, cp_type type)
{
    cp_type_state *st = &s->types[type];
    cp_batch b = {0};
    int rc = sotw_collect(st, snap, type, &b);

    /* withheld names are not answered, not even by an empty response */
    if (rc == 0 && (b.n > 0 || b.n_withheld == 0))
        rc = sotw_send(s, st, snap, type, &b);
    cp_batch_free(&b);
    return rc;
}

/* "initial" (no nonce), "stale", "nack" or "ack". */
static const char *request_kind(const pb_request *req, const cp_type_state *st)
{
    if (req->response_nonce[0] == '\0')
        return "initial";
    if (strcmp(req->response_nonce, st->nonce) != 0)
        return "stale";
    return req->error_detail != NULL ? "nack" : "ack";
}

static void log_request(cp_stream *s, const pb_request *req, const char *kind)
{
    json_t *ev = cp_stream_event(s, "request", req->type_url);

    json_object_set_new(ev, "kind", json_string(kind));
    json_object_set_new(ev, "version_info", json_string(req->version_info));
    json_object_set_new(ev, "response_nonce", json_string(req->response_nonce));
    json_object_set_new(ev, "resource_names",
                        cp_log_strings(req->resource_names, req->n_resource_names));
    if (strcmp(kind, "ack") == 0 || strcmp(kind, "nack") == 0)
        json_object_set_new(ev, "ack", json_boolean(req->error_detail == NULL));
    cp_stream_log_error_detail(ev, req->error_detail);
    cp_stream_log_node(s, ev, req->node);
    cp_log_emit(ev);
}

/* Applies the request's resource_names; returns 1 if the subscription
 * changed. CDS: no names before any explicit name, or "*", is wildcard;
 * once named, an empty list unsubscribes everything. */
static int sotw_apply_names(cp_type_state *st, const pb_request *req, cp_type type)
{
    json_t *names = json_object();
    int wildcard = 0;

    for (size_t i = 0; i < req->n_resource_names; i++) {
        if (strcmp(req->resource_names[i], "*") == 0)
            wildcard = 1;
        else
            json_object_set_new(names, req->resource_names[i], json_true());
    }
    if (type == CP_TYPE_CLUSTER && req->n_resource_names == 0 && !st->named)
        wildcard = 1;
    if (json_object_size(names) > 0)
        st->named = 1;
    int changed = !st->active || wildcard != st->wildcard || !json_equal(names, st->names);
    st->active = 1;
    st->wildcard = wildcard;
    json_decref(st->names);
    st->names = names;
    return changed;
}

static int sotw_subscribed(const cp_type_state *st)
{
    return st->active && (st->wildcard || json_object_size(st->names) > 0);
}

int cp_sotw_on_request(cp_stream *s, const cp_snapshot *snap, const uint8_t *data, size_t len,
                       char *err, size_t errlen)
{
    pb_request *req = envoy__service__discovery__v3__discovery_request__unpack(NULL, len, data);
    if (req == NULL) {
        snprintf(err, errlen, "DiscoveryRequest does not parse (%zu bytes)", len);
        return -1;
    }
    int type = cp_type_from_url(req->type_url);
    int rc = 0;
    if (type < 0) {
        log_request(s, req, "unknown_type");
        goto out;
    }
    cp_type_state *st = &s->types[type];
    const char *kind = request_kind(req, st);
    log_request(s, req, kind);
    if (strcmp(kind, "stale") == 0)
        goto out;
    cp_stream_note_answer(st, req->response_nonce, req->error_detail != NULL);
    int changed = sotw_apply_names(st, req, (cp_type)type);
    if ((changed || strcmp(kind, "initial") == 0) && sotw_subscribed(st))
        rc = sotw_respond(s, snap, (cp_type)type);
out:
    envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
    return rc;
}

int cp_sotw_push(cp_stream *s, const cp_snapshot *snap)
{
    for (int t = 0; t < CP_TYPE_COUNT; t++)
        if (sotw_subscribed(&s->types[t]) && sotw_respond(s, snap, (cp_type)t) != 0)
            return -1;
    return 0;
}
