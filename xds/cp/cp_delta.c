/* cp_delta.c: Delta (incremental) ADS, one stream (see cp_stream.h). */
#include <stdlib.h>
#include <string.h>

#include "cp_log.h"
#include "cp_stream.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "xdsnode/envoy_types.h"

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest pb_delta_request;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse pb_delta_response;
typedef Envoy__Service__Discovery__V3__Resource pb_resource;

/* One response being built for one type. */
typedef struct {
    cp_batch b;
    cp_type_state *st;
    const cp_snapshot *snap;
    cp_type type;
    json_t *force; /* names answered even if held at the current version */
    json_t *prior; /* what the client held before this response */
} delta_ctx;

/* Sets (version) or forgets (NULL) the version the client holds, noting
 * the previous one in ctx->prior so a NACK can put it back. */
static int held_set(delta_ctx *ctx, const char *name, const char *version)
{
    const char *old = json_string_value(json_object_get(ctx->st->known, name));

    if (old == NULL ? version == NULL : version != NULL && strcmp(old, version) == 0)
        return 0;
    if (cp_pending_note(ctx->prior, name, old) != 0)
        return -1;
    if (version == NULL)
        return json_object_del(ctx->st->known, name) == 0 ? 0 : -1;
    return json_object_set_new(ctx->st->known, name, json_string(version));
}

/* Whether `name` must be sent at `version`: not held at it, or forced
 * (once per response). */
static int must_send(delta_ctx *ctx, const char *name, const char *version)
{
    const char *held = json_string_value(json_object_get(ctx->st->known, name));
    int forced = json_object_get(ctx->force, name) != NULL;

    json_object_del(ctx->force, name);
    return held == NULL || strcmp(held, version) != 0 || forced;
}

/* Adds r to the batch if the client must hear about it, and records its
 * version as held. */
static int delta_offer(delta_ctx *ctx, const cp_resource *r)
{
    if (!must_send(ctx, r->name, r->version))
        return 0;
    if (held_set(ctx, r->name, r->version) != 0)
        return -1;
    return cp_batch_add(&ctx->b, r);
}

/* EDS name without an assignment: the empty CLA placeholder. */
static int delta_offer_empty(delta_ctx *ctx, const char *name)
{
    cp_resource empty;

    if (cp_empty_cla(name, &empty) != 0)
        return -1;
    int rc = 0;
    if (must_send(ctx, name, empty.version))
        rc = cp_batch_add_named(&ctx->b, ctx->snap, ctx->type, name) ? 0 : -1;
    if (rc == 0)
        rc = held_set(ctx, name, empty.version);
    free(empty.name);
    free(empty.data);
    return rc;
}

/* A subscribed cluster the scenario lacks: removed_resources once. */
static int delta_offer_missing(delta_ctx *ctx, const char *name)
{
    int held = json_object_get(ctx->st->known, name) != NULL;
    int forced = json_object_get(ctx->force, name) != NULL;

    if (!held && !forced)
        return 0;
    if (held_set(ctx, name, NULL) != 0)
        return -1;
    return cp_batch_remove(&ctx->b, name);
}

/* Explicitly subscribed names: the resource, an empty CLA (EDS), or for a
 * missing cluster the name in removed_resources once. */
static int delta_collect_named(delta_ctx *ctx)
{
    size_t n;
    const char **names = cp_sorted_keys(ctx->st->names, &n);
    int rc = names ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        const cp_resource *r = cp_snapshot_find(ctx->snap, ctx->type, names[i]);
        if (cp_snapshot_withholds(ctx->snap, ctx->type, names[i]))
            ctx->b.n_withheld++;
        else if (r != NULL)
            rc = delta_offer(ctx, r);
        else if (ctx->type == CP_TYPE_CLA)
            rc = delta_offer_empty(ctx, names[i]);
        else
            rc = delta_offer_missing(ctx, names[i]);
    }
    free(names);
    return rc;
}

/* Held names no longer wanted: removed_resources under wildcard (the
 * resource is gone), otherwise forgotten silently (the client dropped them
 * when it unsubscribed, or never subscribed them). Withheld names are left
 * alone: the client keeps what it holds. */
static int delta_collect_gone(delta_ctx *ctx)
{
    cp_type_state *st = ctx->st;
    size_t n;
    const char **held = cp_sorted_keys(st->known, &n);
    int rc = held ? 0 : -1;
    json_t *drop = json_array();

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (json_object_get(st->names, held[i]) ||
            cp_snapshot_withholds(ctx->snap, ctx->type, held[i]))
            continue;
        if (st->wildcard && cp_snapshot_find(ctx->snap, ctx->type, held[i]) != NULL)
            continue;
        if (st->wildcard)
            rc = cp_batch_remove(&ctx->b, held[i]) |
                 cp_pending_note(ctx->prior, held[i],
                                 json_string_value(json_object_get(st->known, held[i])));
        json_array_append_new(drop, json_string(held[i]));
    }
    free(held);
    size_t i;
    json_t *name;
    json_array_foreach(drop, i, name)
        json_object_del(st->known, json_string_value(name));
    json_decref(drop);
    return rc;
}

static int delta_collect(delta_ctx *ctx)
{
    if (ctx->st->wildcard) {
        const cp_resource_set *set = &ctx->snap->types[ctx->type];
        for (size_t i = 0; i < set->n; i++) {
            if (cp_snapshot_withholds(ctx->snap, ctx->type, set->items[i].name))
                ctx->b.n_withheld++;
            else if (delta_offer(ctx, &set->items[i]) != 0)
                return -1;
        }
    }
    if (delta_collect_named(ctx) != 0)
        return -1;
    return delta_collect_gone(ctx);
}

static void log_response(cp_stream *s, const char *type_url, const char *version,
                         const char *nonce, const cp_batch *b, size_t bytes)
{
    json_t *ev = cp_stream_event(s, "response", type_url);
    json_t *names = json_array(), *versions = json_object();

    for (size_t i = 0; i < b->n; i++) {
        json_array_append_new(names, json_string(b->items[i]->name));
        json_object_set_new(versions, b->items[i]->name, json_string(b->items[i]->version));
    }
    json_object_set_new(ev, "version_info", json_string(version));
    json_object_set_new(ev, "nonce", json_string(nonce));
    json_object_set_new(ev, "resources", names);
    json_object_set_new(ev, "resource_versions", versions);
    json_object_set_new(ev, "removed", cp_log_strings(b->removed, b->n_removed));
    json_object_set_new(ev, "bytes", json_integer((json_int_t)bytes));
    cp_log_emit(ev);
}

static int delta_send(cp_stream *s, cp_type_state *st, const cp_snapshot *snap, cp_type type,
                      const cp_batch *b)
{
    const char *url = cp_type_url(type);
    pb_delta_response resp = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
    size_t n = b->n ? b->n : 1;
    pb_resource *res = calloc(n, sizeof(*res));
    pb_resource **ptrs = calloc(n, sizeof(*ptrs));
    pb_any *anys = calloc(n, sizeof(*anys));
    int rc = -1;

    if (res == NULL || ptrs == NULL || anys == NULL)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        google__protobuf__any__init(&anys[i]);
        anys[i].type_url = (char *)url;
        anys[i].value.data = b->items[i]->data;
        anys[i].value.len = b->items[i]->len;
        envoy__service__discovery__v3__resource__init(&res[i]);
        res[i].name = b->items[i]->name;
        res[i].version = (char *)b->items[i]->version;
        res[i].resource = &anys[i];
        ptrs[i] = &res[i];
    }
    cp_stream_next_nonce(st->nonce);
    resp.system_version_info = snap->version;
    resp.type_url = (char *)url;
    resp.nonce = st->nonce;
    resp.n_resources = b->n;
    resp.resources = ptrs;
    resp.n_removed_resources = b->n_removed;
    resp.removed_resources = b->removed;
    size_t len;
    uint8_t *buf = cp_pack(&resp.base, &len);
    if (buf == NULL)
        goto out;
    log_response(s, url, snap->version, st->nonce, b, len);
    rc = cp_stream_deliver(s, st, snap->version, buf, len);
out:
    free(res);
    free(ptrs);
    free(anys);
    return rc;
}

/* Whether a response is due: something to say, or `always` (the first
 * answer on a type, so the client's initial fetch completes) unless names
 * were withheld (withheld names get no answer at all). */
static int delta_due(const cp_batch *b, int always)
{
    if (b->n > 0 || b->n_removed > 0)
        return 1;
    return always && b->n_withheld == 0;
}

/* Sends what changed for this type and remembers it until answered. */
static int delta_respond(cp_stream *s, const cp_snapshot *snap, cp_type type, json_t *force,
                         int always)
{
    delta_ctx ctx = {.st = &s->types[type], .snap = snap, .type = type, .force = force,
                     .prior = json_object()};
    int rc = ctx.prior ? delta_collect(&ctx) : -1;

    if (rc == 0 && delta_due(&ctx.b, always)) {
        rc = delta_send(s, ctx.st, snap, type, &ctx.b);
        if (rc == 0) {
            rc = cp_pending_add(ctx.st, ctx.st->nonce, ctx.prior);
            ctx.prior = NULL;
        }
    }
    json_decref(ctx.prior);
    cp_batch_free(&ctx.b);
    return rc;
}

/* An ACK or NACK answers the latest response or one still unanswered
 * (`answered` is its index in st->pending, or -1); any other nonce is
 * stale. */
static const char *request_kind(const pb_delta_request *req, const cp_type_state *st,
                                int answered)
{
    if (req->response_nonce[0] == '\0')
        return st->active ? "subscription" : "initial";
    if (answered < 0 && strcmp(req->response_nonce, st->nonce) != 0)
        return "stale";
    return req->error_detail != NULL ? "nack" : "ack";
}

static void log_request(cp_stream *s, const pb_delta_request *req, const char *kind)
{
    json_t *ev = cp_stream_event(s, "request", req->type_url);
    json_t *irv = json_object();

    for (size_t i = 0; i < req->n_initial_resource_versions; i++)
        json_object_set_new(irv, req->initial_resource_versions[i]->key,
                            json_string(req->initial_resource_versions[i]->value));
    json_object_set_new(ev, "kind", json_string(kind));
    json_object_set_new(ev, "response_nonce", json_string(req->response_nonce));
    json_object_set_new(ev, "subscribe", cp_log_strings(req->resource_names_subscribe,
                                                        req->n_resource_names_subscribe));
    json_object_set_new(ev, "unsubscribe", cp_log_strings(req->resource_names_unsubscribe,
                                                          req->n_resource_names_unsubscribe));
    json_object_set_new(ev, "initial_resource_versions", irv);
    if (strcmp(kind, "ack") == 0 || strcmp(kind, "nack") == 0)
        json_object_set_new(ev, "ack", json_boolean(req->error_detail == NULL));
    cp_stream_log_error_detail(ev, req->error_detail);
    cp_stream_log_node(s, ev, req->node);
    cp_log_emit(ev);
}

/* First request on a type: versions the client holds; CDS with no names at
 * all is (legacy) wildcard. */
static void delta_first(cp_type_state *st, const pb_delta_request *req, cp_type type)
{
    st->active = 1;
    for (size_t i = 0; i < req->n_initial_resource_versions; i++)
        json_object_set_new(st->known, req->initial_resource_versions[i]->key,
                            json_string(req->initial_resource_versions[i]->value));
    if (type == CP_TYPE_CLUSTER && req->n_resource_names_subscribe == 0 &&
        req->n_resource_names_unsubscribe == 0)
        st->wildcard = 1;
}

/* Applies subscribe/unsubscribe. `force` collects names the client must
 * hear about even if it holds the current version: names subscribed after
 * the first request (the protocol says every subscribed name is answered;
 * on the first request initial_resource_versions is what the client holds,
 * and unchanged resources are not resent), and names unsubscribed but still
 * covered by the wildcard. */
static void delta_apply(cp_type_state *st, const pb_delta_request *req, int first,
                        json_t *force)
{
    for (size_t i = 0; i < req->n_resource_names_subscribe; i++) {
        const char *name = req->resource_names_subscribe[i];
        if (strcmp(name, "*") == 0) {
            st->wildcard = 1;
            continue;
        }
        json_object_set_new(st->names, name, json_true());
        if (!first)
            json_object_set_new(force, name, json_true());
    }
    for (size_t i = 0; i < req->n_resource_names_unsubscribe; i++) {
        const char *name = req->resource_names_unsubscribe[i];
        if (strcmp(name, "*") == 0) {
            st->wildcard = 0;
            continue;
        }
        json_object_del(st->names, name);
        if (st->wildcard)
            json_object_set_new(force, name, json_true());
        else
            json_object_del(st->known, name);
    }
}

int cp_delta_on_request(cp_stream *s, const cp_snapshot *snap, const uint8_t *data,
                        size_t len, char *err, size_t errlen)
{
    pb_delta_request *req =
        envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, data);
    if (req == NULL) {
        snprintf(err, errlen, "DeltaDiscoveryRequest does not parse (%zu bytes)", len);
        return -1;
    }
    int type = cp_type_from_url(req->type_url);
    int rc = 0;
    if (type < 0) {
        log_request(s, req, "unknown_type");
        goto out;
    }
    cp_type_state *st = &s->types[type];
    int answered = cp_pending_find(st, req->response_nonce);
    log_request(s, req, request_kind(req, st, answered));
    cp_stream_note_answer(st, req->response_nonce, req->error_detail != NULL);
    cp_pending done = {.prior = NULL};
    if (answered >= 0)
        cp_pending_take(st, answered, &done);
    int first = !st->active;
    if (first)
        delta_first(st, req, (cp_type)type);
    json_t *force = json_object();
    delta_apply(st, req, first, force);
    rc = delta_respond(s, snap, (cp_type)type, force, first);
    json_decref(force);
    /* after responding: what the client held before the rejected response
     * is also what it held before the one just sent */
    if (req->error_detail != NULL && done.prior != NULL)
        cp_pending_reject(st, &done);
    json_decref(done.prior);
out:
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(req, NULL);
    return rc;
}

int cp_delta_push(cp_stream *s, const cp_snapshot *snap)
{
    for (int t = 0; t < CP_TYPE_COUNT; t++) {
        if (!s->types[t].active)
            continue;
        cp_pending_undo(&s->types[t]);
        if (delta_respond(s, snap, (cp_type)t, NULL, 0) != 0)
            return -1;
    }
    return 0;
}
