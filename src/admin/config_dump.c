/* config_dump.c: Envoy's /config_dump from the node's config (config_dump.h). */
#include "xdsnode/config_dump.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/pbjson.h"

#define MAX_MASK_PATHS 64
#define QUERY_VALUE_MAX 4096

/* One dump in the output, e.g. the ClustersConfigDump. */
typedef struct {
    const ProtobufCMessageDescriptor *desc;
    json_t *json; /* encoded message, without "@type" */
} dump_part;

typedef struct {
    char resource[QUERY_VALUE_MAX];
    char mask[QUERY_VALUE_MAX];
    char name_regex[QUERY_VALUE_MAX];
    int has_resource, has_mask, has_regex, include_eds;
    regex_t re;
} dump_query;

typedef struct {
    char *paths[MAX_MASK_PATHS];
    size_t n;
    char *storage;
} field_mask;

/* --- small helpers ------------------------------------------------------ */

static void to_timestamp(const struct timespec *ts, Google__Protobuf__Timestamp *out)
{
    google__protobuf__timestamp__init(out);
    out->seconds = ts->tv_sec;
    out->nanos = (int32_t)ts->tv_nsec;
}

static int name_matches(const dump_query *q, const char *name)
{
    if (!q->has_regex)
        return 1;
    regmatch_t m;
    if (regexec(&q->re, name, 1, &m, 0) != 0)
        return 0;
    return m.rm_so == 0 && (size_t)m.rm_eo == strlen(name);
}

static int respond_text(admin_response *resp, int status, const char *text)
{
    return admin_response_printf(resp, status, "%s", text);
}

/* --- building the dumps -------------------------------------------------- */

static json_t *encode_bootstrap_dump(const config_dump_sources *src, char *err, size_t errlen)
{
    Envoy__Admin__V3__BootstrapConfigDump dump;
    Google__Protobuf__Timestamp ts;
    envoy__admin__v3__bootstrap_config_dump__init(&dump);
    to_timestamp(&src->bootstrap_loaded, &ts);
    dump.bootstrap = (pb_bootstrap *)src->bootstrap;
    dump.last_updated = &ts;
    return pbjson_encode(&dump.base, err, errlen);
}

/* Storage for one listed cluster (static or dynamic) while encoding. */
typedef struct {
    Envoy__Admin__V3__ClustersConfigDump__StaticCluster stat;
    Envoy__Admin__V3__ClustersConfigDump__DynamicCluster dyn;
    Envoy__Admin__V3__UpdateFailureState failure;
    Google__Protobuf__Any any, failed_any;
    Google__Protobuf__Timestamp ts, failure_ts;
} cluster_slot;

static char cluster_type_url[] = PBJSON_TYPE_URL_PREFIX "envoy.config.cluster.v3.Cluster";

typedef struct {
    Envoy__Admin__V3__ClustersConfigDump dump;
    cluster_slot *slots;
    size_t used;
    Envoy__Admin__V3__ClustersConfigDump__StaticCluster **statics;
    Envoy__Admin__V3__ClustersConfigDump__DynamicCluster **active, **warming;
} clusters_builder;

static cluster_slot *next_slot(clusters_builder *b)
{
    cluster_slot *s = &b->slots[b->used++];
    google__protobuf__any__init(&s->any);
    s->any.type_url = cluster_type_url;
    return s;
}

static void set_any(Google__Protobuf__Any *any, uint8_t *bytes, size_t len)
{
    any->value.data = bytes;
    any->value.len = len;
}

/* error_state for a dynamic cluster with a rejected update. */
static void attach_failure(cluster_slot *s, const xds_failure *f, const xds_rejected_resource *r)
{
    envoy__admin__v3__update_failure_state__init(&s->failure);
    google__protobuf__any__init(&s->failed_any);
    s->failed_any.type_url = cluster_type_url;
    set_any(&s->failed_any, r->bytes, r->len);
    to_timestamp(&f->when, &s->failure_ts);
    s->failure.failed_configuration = r->len ? &s->failed_any : NULL;
    s->failure.last_update_attempt = &s->failure_ts;
    s->failure.details = r->details;
    s->failure.version_info = f->version_info;
    s->dyn.error_state = &s->failure;
    s->dyn.client_status = ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED;
}

static const xds_rejected_resource *find_rejected(const xds_failure *f, const char *name)
{
    for (size_t i = 0; f && i < f->n_resources; i++) {
        if (strcmp(f->resources[i].name, name) == 0)
            return &f->resources[i];
    }
    return NULL;
}

static void add_dynamic(clusters_builder *b, const cm_cluster *c, int warming, const xds_failure *f)
{
    cluster_slot *s = next_slot(b);
    envoy__admin__v3__clusters_config_dump__dynamic_cluster__init(&s->dyn);
    if (warming && c->warming_config) {
        set_any(&s->any, c->warming_config, c->warming_config_len);
        s->dyn.version_info = c->warming_version;
        to_timestamp(&c->warming_updated, &s->ts);
    } else {
        set_any(&s->any, c->config, c->config_len);
        s->dyn.version_info = c->version_info;
        to_timestamp(&c->last_updated, &s->ts);
    }
    s->dyn.cluster = &s->any;
    s->dyn.last_updated = &s->ts;
    const xds_rejected_resource *r = warming ? NULL : find_rejected(f, c->name);
    if (r)
        attach_failure(s, f, r);
    if (warming)
        b->warming[b->dump.n_dynamic_warming_clusters++] = &s->dyn;
    else
        b->active[b->dump.n_dynamic_active_clusters++] = &s->dyn;
}

static void add_static(clusters_builder *b, const cm_cluster *c)
{
    cluster_slot *s = next_slot(b);
    envoy__admin__v3__clusters_config_dump__static_cluster__init(&s->stat);
    set_any(&s->any, c->config, c->config_len);
    to_timestamp(&c->last_updated, &s->ts);
    s->stat.cluster = &s->any;
    s->stat.last_updated = &s->ts;
    b->statics[b->dump.n_static_clusters++] = &s->stat;
}

/* A rejected cluster the node does not hold: an entry with error_state
 * only (as Envoy shows rejected listeners). */
static void add_rejected_only(clusters_builder *b, const xds_failure *f, const xds_rejected_resource *r)
{
    cluster_slot *s = next_slot(b);
    envoy__admin__v3__clusters_config_dump__dynamic_cluster__init(&s->dyn);
    attach_failure(s, f, r);
    b->active[b->dump.n_dynamic_active_clusters++] = &s->dyn;
}

static void add_all(clusters_builder *b, const config_dump_sources *src, const dump_query *q,
                    const xds_failure *f)
{
    for (size_t i = 0; i < cluster_manager_count(src->clusters); i++) {
        const cm_cluster *c = cluster_manager_at(src->clusters, i);
        if (!name_matches(q, c->name))
            continue;
        if (!c->added_via_api) {
            add_static(b, c);
            continue;
        }
        if (c->state == CM_CLUSTER_ACTIVE)
            add_dynamic(b, c, 0, f);
        if (c->state == CM_CLUSTER_WARMING || c->warming_config)
            add_dynamic(b, c, 1, f);
    }
    for (size_t i = 0; f && i < f->n_resources; i++) {
        const xds_rejected_resource *r = &f->resources[i];
        if (name_matches(q, r->name) && cluster_manager_find(src->clusters, r->name) == NULL)
            add_rejected_only(b, f, r);
    }
}

static json_t *encode_clusters_dump(const config_dump_sources *src, const dump_query *q,
                                    char *err, size_t errlen)
{
    const xds_failure *f = src->xds ? xds_client_cds_failure(src->xds) : NULL;
    size_t n = 2 * cluster_manager_count(src->clusters) + (f ? f->n_resources : 0) + 1;
    clusters_builder b;
    memset(&b, 0, sizeof(b));
    envoy__admin__v3__clusters_config_dump__init(&b.dump);
    b.slots = calloc(n, sizeof(*b.slots));
    b.statics = calloc(n, sizeof(*b.statics));
    b.active = calloc(n, sizeof(*b.active));
    b.warming = calloc(n, sizeof(*b.warming));
    json_t *out = NULL;
    if (b.slots && b.statics && b.active && b.warming) {
        add_all(&b, src, q, f && f->present ? f : NULL);
        b.dump.version_info = src->xds ? (char *)xds_client_cds_version(src->xds) : (char *)"";
        b.dump.static_clusters = b.statics;
        b.dump.dynamic_active_clusters = b.active;
        b.dump.dynamic_warming_clusters = b.warming;
        out = pbjson_encode(&b.dump.base, err, errlen);
    } else {
        snprintf(err, errlen, "out of memory");
    }
    free(b.slots);
    free(b.statics);
    free(b.active);
    free(b.warming);
    return out;
}

/* Endpoints of an active cluster, as Envoy shows them: the assignment in
 * force (EDS) or the config's load_assignment, named after the EDS
 * service name or the cluster. */
static int endpoint_any(const cm_cluster *c, Google__Protobuf__Any *any, char *err, size_t errlen)
{
    pb_cluster *pc = (pb_cluster *)protobuf_c_message_unpack(PB_CLUSTER_DESC, NULL,
                                                             c->config_len, c->config);
    pb_cla *assigned = c->assignment ? (pb_cla *)protobuf_c_message_unpack(
                                           PB_CLA_DESC, NULL, c->assignment_len, c->assignment)
                                     : NULL;
    if (pc == NULL || (c->assignment && assigned == NULL)) {
        snprintf(err, errlen, "cluster %s: stored config does not parse", c->name);
        if (pc)
            protobuf_c_message_free_unpacked(&pc->base, NULL);
        return -1;
    }
    pb_cla empty;
    pb_cla *cla = assigned ? assigned : pc->load_assignment;
    if (cla == NULL) {
        envoy__config__endpoint__v3__cluster_load_assignment__init(&empty);
        cla = &empty;
    }
    char *saved = cla->cluster_name;
    const char *svc = pc->eds_cluster_config && pc->eds_cluster_config->service_name[0]
                          ? pc->eds_cluster_config->service_name : c->name;
    cla->cluster_name = (char *)svc;
    int rc = pbjson_any_pack(&any->base, &cla->base);
    cla->cluster_name = saved;
    if (assigned)
        protobuf_c_message_free_unpacked(&assigned->base, NULL);
    protobuf_c_message_free_unpacked(&pc->base, NULL);
    if (rc != 0)
        snprintf(err, errlen, "out of memory");
    return rc;
}

typedef struct {
    Envoy__Admin__V3__EndpointsConfigDump__StaticEndpointConfig stat;
    Envoy__Admin__V3__EndpointsConfigDump__DynamicEndpointConfig dyn;
    Google__Protobuf__Any any;
} endpoint_slot;

static json_t *encode_endpoints_dump(const config_dump_sources *src, const dump_query *q,
                                     char *err, size_t errlen)
{
    size_t n = cluster_manager_count(src->clusters), used = 0;
    endpoint_slot *slots = calloc(n ? n : 1, sizeof(*slots));
    Envoy__Admin__V3__EndpointsConfigDump__StaticEndpointConfig **statics = calloc(n ? n : 1, sizeof(*statics));
    Envoy__Admin__V3__EndpointsConfigDump__DynamicEndpointConfig **dyns = calloc(n ? n : 1, sizeof(*dyns));
    Envoy__Admin__V3__EndpointsConfigDump dump;
    envoy__admin__v3__endpoints_config_dump__init(&dump);
    json_t *out = NULL;
    if (slots == NULL || statics == NULL || dyns == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const cm_cluster *c = cluster_manager_at(src->clusters, i);
        if (c->state != CM_CLUSTER_ACTIVE || !name_matches(q, c->name))
            continue;
        endpoint_slot *s = &slots[used];
        google__protobuf__any__init(&s->any);
        if (endpoint_any(c, &s->any, err, errlen) != 0)
            goto done;
        used++;
        if (c->added_via_api) {
            envoy__admin__v3__endpoints_config_dump__dynamic_endpoint_config__init(&s->dyn);
            s->dyn.endpoint_config = &s->any;
            dyns[dump.n_dynamic_endpoint_configs++] = &s->dyn;
        } else {
            envoy__admin__v3__endpoints_config_dump__static_endpoint_config__init(&s->stat);
            s->stat.endpoint_config = &s->any;
            statics[dump.n_static_endpoint_configs++] = &s->stat;
        }
    }
    dump.static_endpoint_configs = statics;
    dump.dynamic_endpoint_configs = dyns;
    out = pbjson_encode(&dump.base, err, errlen);
done:
    for (size_t i = 0; slots && i < used; i++) {
        free(slots[i].any.type_url);
        free(slots[i].any.value.data);
    }
    free(slots);
    free(statics);
    free(dyns);
    return out;
}

/* Static listeners from the bootstrap, as Envoy's ListenersConfigDump. */
static json_t *encode_listeners_dump(const config_dump_sources *src, const dump_query *q,
                                     char *err, size_t errlen)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = src->bootstrap->static_resources;
    size_t n = sr ? sr->n_listeners : 0, used = 0;
    Envoy__Admin__V3__ListenersConfigDump__StaticListener *slots = calloc(n ? n : 1, sizeof(*slots));
    Envoy__Admin__V3__ListenersConfigDump__StaticListener **list = calloc(n ? n : 1, sizeof(*list));
    Google__Protobuf__Any *anys = calloc(n ? n : 1, sizeof(*anys));
    Google__Protobuf__Timestamp ts;
    json_t *out = NULL;
    to_timestamp(&src->bootstrap_loaded, &ts);
    if (slots == NULL || list == NULL || anys == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_matches(q, sr->listeners[i]->name))
            continue;
        google__protobuf__any__init(&anys[used]);
        if (pbjson_any_pack(&anys[used].base, &sr->listeners[i]->base) != 0) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        envoy__admin__v3__listeners_config_dump__static_listener__init(&slots[used]);
        slots[used].listener = &anys[used];
        slots[used].last_updated = &ts;
        list[used] = &slots[used];
        used++;
    }
    Envoy__Admin__V3__ListenersConfigDump dump;
    envoy__admin__v3__listeners_config_dump__init(&dump);
    dump.n_static_listeners = used;
    dump.static_listeners = list;
    out = pbjson_encode(&dump.base, err, errlen);
done:
    for (size_t i = 0; anys && i < used; i++) {
        free(anys[i].type_url);
        free(anys[i].value.data);
    }
    free(anys);
    free(slots);
    free(list);
    return out;
}

/* --- field masks ---------------------------------------------------------- */

static int mask_parse(const char *text, field_mask *m)
{
    memset(m, 0, sizeof(*m));
    m->storage = strdup(text);
    if (m->storage == NULL)
        return -1;
    char *save = NULL;
    for (char *p = strtok_r(m->storage, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (*p == '\0')
            continue;
        if (m->n == MAX_MASK_PATHS)
            return -1;
        m->paths[m->n++] = p;
    }
    return 0;
}

static void mask_free(field_mask *m) { free(m->storage); }

/* FieldMaskUtil::GetFieldDescriptors: every component names a field, and
 * every component but the last is a singular message field. */
static int mask_path_valid(const ProtobufCMessageDescriptor *d, const char *path)
{
    char comp[256];
    while (d != NULL) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (len == 0 || len >= sizeof(comp))
            return 0;
        memcpy(comp, path, len);
        comp[len] = '\0';
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, comp);
        if (f == NULL)
            return 0;
        if (dot == NULL)
            return 1;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
            return 0;
        d = f->descriptor;
        path = dot + 1;
    }
    return 0;
}

/* Keeps in `obj` only what the paths name. An Any keeps its "@type". */
static void json_trim(json_t *obj, char *const *paths, size_t n)
{
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, value) {
        if (strcmp(key, "@type") == 0)
            continue;
        size_t klen = strlen(key);
        int whole = 0;
        char *sub[MAX_MASK_PATHS];
        size_t nsub = 0;
        for (size_t i = 0; i < n; i++) {
            if (strncmp(paths[i], key, klen) != 0)
                continue;
            if (paths[i][klen] == '\0')
                whole = 1;
            else if (paths[i][klen] == '.')
                sub[nsub++] = paths[i] + klen + 1;
        }
        if (whole || (nsub > 0 && !json_is_object(value)))
            continue;
        if (nsub == 0)
            json_object_del(obj, key);
        else
            json_trim(value, sub, nsub);
    }
}

static int mask_apply(const ProtobufCMessageDescriptor *d, json_t *json, const field_mask *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (!mask_path_valid(d, m->paths[i]))
            return -1;
    }
    json_trim(json, m->paths, m->n);
    return 0;
}

/* Resource masks may reach into the resource's single Any field
 * ("cluster.name"): such paths are checked against the packed type. */
static int resource_mask_apply(const ProtobufCMessageDescriptor *d, json_t *json,
                               const field_mask *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *path = m->paths[i];
        const char *dot = strchr(path, '.');
        char first[256];
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (len >= sizeof(first))
            return -1;
        memcpy(first, path, len);
        first[len] = '\0';
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, first);
        int is_any = f && f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
                     strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name, "google.protobuf.Any") == 0;
        if (!is_any) {
            if (!mask_path_valid(d, path))
                return -1;
            continue;
        }
        json_t *inner = json_object_get(json, first);
        const char *type = json_string_value(json_object_get(inner, "@type"));
        if (dot && type) {
            const ProtobufCMessageDescriptor *id = pbjson_type_lookup(type);
            if (id == NULL || !mask_path_valid(id, dot + 1))
                return -1;
        }
    }
    json_trim(json, m->paths, m->n);
    return 0;
}

static char *mask_debug_string(const field_mask *m)
{
    size_t cap = 64;
    for (size_t i = 0; i < m->n; i++)
        cap += strlen(m->paths[i]) + 16;
    char *s = malloc(cap), *p = s;
    if (s == NULL)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < m->n; i++)
        p += sprintf(p, "paths: \"%s\"\n", m->paths[i]);
    return s;
}

/* --- assembling the answer ------------------------------------------------ */

static json_t *with_type(const ProtobufCMessageDescriptor *d, json_t *body)
{
    json_t *o = json_object();
    char url[512];
    snprintf(url, sizeof(url), PBJSON_TYPE_URL_PREFIX "%s", d->name);
    json_object_set_new(o, "@type", json_string(url));
    json_object_update(o, body);
    return o;
}

static int build_parts(const config_dump_sources *src, const dump_query *q, dump_part *parts,
                       size_t *n, char *err, size_t errlen)
{
    *n = 0;
    parts[*n].desc = &envoy__admin__v3__bootstrap_config_dump__descriptor;
    if ((parts[(*n)++].json = encode_bootstrap_dump(src, err, errlen)) == NULL)
        return -1;
    parts[*n].desc = &envoy__admin__v3__clusters_config_dump__descriptor;
    if ((parts[(*n)++].json = encode_clusters_dump(src, q, err, errlen)) == NULL)
        return -1;
    if (q->include_eds && cluster_manager_count(src->clusters) > 0) {
        parts[*n].desc = &envoy__admin__v3__endpoints_config_dump__descriptor;
        if ((parts[(*n)++].json = encode_endpoints_dump(src, q, err, errlen)) == NULL)
            return -1;
    }
    parts[*n].desc = &envoy__admin__v3__listeners_config_dump__descriptor;
    if ((parts[(*n)++].json = encode_listeners_dump(src, q, err, errlen)) == NULL)
        return -1;
    return 0;
}

static int render_all(dump_part *parts, size_t n, const dump_query *q, json_t *configs,
                      admin_response *resp)
{
    field_mask m = {0};
    if (q->has_mask && mask_parse(q->mask, &m) != 0) {
        mask_free(&m);
        return respond_text(resp, 400, "too many FieldMask paths");
    }
    for (size_t i = 0; i < n; i++) {
        if (q->has_mask && mask_apply(parts[i].desc, parts[i].json, &m) != 0)
            continue;
        json_array_append_new(configs, with_type(parts[i].desc, parts[i].json));
    }
    mask_free(&m);
    if (q->has_mask && json_array_size(configs) == 0)
        return admin_response_printf(resp, 400,
                                     "FieldMask %s could not be successfully applied to any configs.",
                                     q->mask);
    return 1;
}

static int render_resource(dump_part *parts, size_t n, const dump_query *q, json_t *configs,
                           admin_response *resp)
{
    field_mask m = {0};
    if (q->has_mask && mask_parse(q->mask, &m) != 0) {
        mask_free(&m);
        return respond_text(resp, 400, "too many FieldMask paths");
    }
    int rc = 1;
    for (size_t i = 0; i < n && rc == 1; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(parts[i].desc, q->resource);
        if (f == NULL)
            continue;
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            rc = admin_response_printf(resp, 400,
                                       "%s is not a repeated field. Use ?mask=%s to get only this field",
                                       f->name, f->name);
            break;
        }
        json_t *list = json_object_get(parts[i].json, f->name);
        size_t idx;
        json_t *elem;
        json_array_foreach(list, idx, elem) {
            if (q->has_mask && resource_mask_apply(f->descriptor, elem, &m) != 0) {
                char *dbg = mask_debug_string(&m);
                rc = admin_response_printf(resp, 400, "FieldMask %s could not be successfully used.",
                                           dbg ? dbg : "");
                free(dbg);
                break;
            }
            json_array_append_new(configs, with_type(f->descriptor, elem));
        }
        if (rc == 1)
            rc = 2; /* found */
    }
    mask_free(&m);
    if (rc == 1)
        return admin_response_printf(resp, 404, "%s not found in config dump", q->resource);
    return rc == 2 ? 1 : rc;
}

static int parse_query(const char *query, dump_query *q, admin_response *resp, int *answered)
{
    char flag[8];
    memset(q, 0, sizeof(*q));
    *answered = 0;
    q->has_resource = admin_query_param(query, "resource", q->resource, sizeof(q->resource)) == 1;
    q->has_mask = admin_query_param(query, "mask", q->mask, sizeof(q->mask)) == 1;
    q->has_regex = admin_query_param(query, "name_regex", q->name_regex, sizeof(q->name_regex)) == 1 &&
                   q->name_regex[0] != '\0';
    q->include_eds = admin_query_param(query, "include_eds", flag, sizeof(flag)) != 0;
    if (q->has_regex && regcomp(&q->re, q->name_regex, REG_EXTENDED) != 0) {
        q->has_regex = 0;
        *answered = 1;
        return admin_response_printf(resp, 400, "Error while parsing name_regex from %s",
                                     q->name_regex);
    }
    return 0;
}

static void free_parts(dump_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(parts[i].json);
}

int config_dump_render(const config_dump_sources *src, const char *query, admin_response *resp)
{
    dump_query q;
    int answered;
    int rc = parse_query(query, &q, resp, &answered);
    if (answered)
        return rc;

    dump_part parts[4];
    size_t n = 0;
    char err[512];
    if (build_parts(src, &q, parts, &n, err, sizeof(err)) != 0) {
        free_parts(parts, n);
        if (q.has_regex)
            regfree(&q.re);
        return admin_response_printf(resp, 500, "config dump failed: %s", err);
    }
    json_t *root = json_object();
    json_t *configs = json_array();
    json_object_set_new(root, "configs", configs);
    rc = q.has_resource ? render_resource(parts, n, &q, configs, resp)
                        : render_all(parts, n, &q, configs, resp);
    if (rc == 1) {
        char *text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(15));
        rc = text ? admin_response_set_text(resp, 200, "application/json", text, strlen(text)) : -1;
        free(text);
    }
    json_decref(root);
    free_parts(parts, n);
    if (q.has_regex)
        regfree(&q.re);
    return rc;
}
