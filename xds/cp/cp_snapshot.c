/* cp_snapshot.c: scenario files and the scale generator to snapshots (see
 * cp_snapshot.h). */
#include "cp_snapshot.h"

#include "xdsnode/config_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/envoy_types.h"
#include "xdsnode/pbjson.h"
#include "xdsnode/config_file.h"
#include "xdsnode/scenario.pb-c.h"

#define SCENARIO_MAX_BYTES (512u * 1024u * 1024u)

/* Generator constants (issue 3, bench/xds-scale). */
#define GEN_ENDPOINT_PORT 8080
#define GEN_CONNECT_TIMEOUT "1s"

typedef Xdsnode__Cp__V1__Scenario pb_scenario;

int cp_type_from_url(const char *type_url)
{
    if (strcmp(type_url, CP_TYPE_URL_CLUSTER) == 0)
        return CP_TYPE_CLUSTER;
    if (strcmp(type_url, CP_TYPE_URL_CLA) == 0)
        return CP_TYPE_CLA;
    return -1;
}

const char *cp_type_url(cp_type type)
{
    return type == CP_TYPE_CLUSTER ? CP_TYPE_URL_CLUSTER : CP_TYPE_URL_CLA;
}

void cp_hash_bytes(const uint8_t *data, size_t len, char out[CP_HASH_LEN])
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 1099511628211ull;
    }
    snprintf(out, CP_HASH_LEN, "h%016llx", (unsigned long long)h);
}

/* --- resource sets ------------------------------------------------------ */

static void set_free(cp_resource_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->items[i].name);
        free(set->items[i].data);
    }
    free(set->items);
    free(set->by_name);
    memset(set, 0, sizeof(*set));
}

void cp_snapshot_free(cp_snapshot *snap)
{
    if (snap == NULL)
        return;
    for (int t = 0; t < CP_TYPE_COUNT; t++)
        set_free(&snap->types[t]);
    for (size_t i = 0; i < snap->n_withheld; i++)
        free(snap->withheld[i]);
    free(snap->withheld);
    free(snap->version);
    cp_sequence_free(snap->sequence);
    free(snap);
}

static int set_reserve(cp_resource_set *set, size_t n)
{
    set->items = calloc(n ? n : 1, sizeof(*set->items));
    set->by_name = calloc(n ? n : 1, sizeof(*set->by_name));
    return set->items && set->by_name ? 0 : -1;
}

/* Appends a resource, serializing `msg`; the set was reserved large enough. */
static int set_add(cp_resource_set *set, const char *name, const ProtobufCMessage *msg)
{
    cp_resource *r = &set->items[set->n];
    size_t len = protobuf_c_message_get_packed_size(msg);

    r->name = strdup(name);
    r->data = malloc(len ? len : 1);
    if (r->name == NULL || r->data == NULL) {
        free(r->name);
        free(r->data);
        return -1;
    }
    r->len = protobuf_c_message_pack(msg, r->data);
    cp_hash_bytes(r->data, r->len, r->version);
    set->n++;
    return 0;
}

static const cp_resource_set *sort_set;

static int cmp_by_name(const void *a, const void *b)
{
    const cp_resource *ra = &sort_set->items[*(const size_t *)a];
    const cp_resource *rb = &sort_set->items[*(const size_t *)b];
    int c = strcmp(ra->name, rb->name);
    if (c != 0)
        return c;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Single-threaded by contract (cp_snapshot.h), so a static sort context is
 * fine. */
static void set_index(cp_resource_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        set->by_name[i] = i;
    sort_set = set;
    qsort(set->by_name, set->n, sizeof(*set->by_name), cmp_by_name);
    sort_set = NULL;
}

const cp_resource *cp_snapshot_find(const cp_snapshot *snap, cp_type type, const char *name)
{
    const cp_resource_set *set = &snap->types[type];
    size_t lo = 0, hi = set->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(set->items[set->by_name[mid]].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < set->n && strcmp(set->items[set->by_name[lo]].name, name) == 0)
        return &set->items[set->by_name[lo]];
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int cp_snapshot_withholds(const cp_snapshot *snap, cp_type type, const char *name)
{
    if (type != CP_TYPE_CLA || snap->n_withheld == 0)
        return 0;
    return bsearch(&name, snap->withheld, snap->n_withheld, sizeof(*snap->withheld),
                   cmp_str) != NULL;
}

/* Copies the withheld names, sorted. */
static int snapshot_set_withheld(cp_snapshot *snap, char *const *names, size_t n)
{
    snap->withheld = calloc(n ? n : 1, sizeof(*snap->withheld));
    if (snap->withheld == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        snap->withheld[i] = strdup(names[i]);
        if (snap->withheld[i] == NULL)
            return -1;
        snap->n_withheld++;
    }
    qsort(snap->withheld, n, sizeof(*snap->withheld), cmp_str);
    return 0;
}

/* Hash of the withheld names, so withholding alone changes the version. */
static void withheld_hash(const cp_snapshot *snap, char out[CP_HASH_LEN])
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < snap->n_withheld; i++)
        for (const char *c = snap->withheld[i];; c++) {
            h ^= (uint8_t)*c; /* the NUL too, as a separator */
            h *= 1099511628211ull;
            if (*c == '\0')
                break;
        }
    snprintf(out, CP_HASH_LEN, "h%016llx", (unsigned long long)h);
}

/* Version: the scenario's, or "h" + a hash of every resource hash (and of
 * the withheld names, if any). */
static int snapshot_set_version(cp_snapshot *snap, const char *version)
{
    if (version != NULL && version[0] != '\0') {
        snap->version = strdup(version);
        return snap->version ? 0 : -1;
    }
    size_t total = 0;
    for (int t = 0; t < CP_TYPE_COUNT; t++)
        total += snap->types[t].n;
    char *all = malloc((total + 1) * CP_HASH_LEN + 1);
    if (all == NULL)
        return -1;
    size_t off = 0;
    for (int t = 0; t < CP_TYPE_COUNT; t++)
        for (size_t i = 0; i < snap->types[t].n; i++, off += CP_HASH_LEN)
            memcpy(all + off, snap->types[t].items[i].version, CP_HASH_LEN);
    if (snap->n_withheld > 0) {
        withheld_hash(snap, all + off);
        off += CP_HASH_LEN;
    }
    char h[CP_HASH_LEN];
    cp_hash_bytes((const uint8_t *)all, off, h);
    free(all);
    snap->version = strdup(h);
    return snap->version ? 0 : -1;
}

static int sequence_build(const pb_scenario *sc, cp_snapshot *snap);

static int snapshot_from_scenario(const pb_scenario *sc, cp_snapshot **out)
{
    cp_snapshot *snap = calloc(1, sizeof(*snap));
    if (snap == NULL)
        return -1;
    cp_resource_set *cds = &snap->types[CP_TYPE_CLUSTER];
    cp_resource_set *eds = &snap->types[CP_TYPE_CLA];
    int rc = set_reserve(cds, sc->n_clusters) | set_reserve(eds, sc->n_endpoints);
    for (size_t i = 0; rc == 0 && i < sc->n_clusters; i++)
        rc = set_add(cds, sc->clusters[i]->name, &sc->clusters[i]->base);
    for (size_t i = 0; rc == 0 && i < sc->n_endpoints; i++)
        rc = set_add(eds, sc->endpoints[i]->cluster_name, &sc->endpoints[i]->base);
    if (rc == 0)
        rc = snapshot_set_withheld(snap, sc->withhold_endpoints, sc->n_withhold_endpoints);
    if (rc == 0)
        rc = snapshot_set_version(snap, sc->version);
    if (rc == 0)
        rc = sequence_build(sc, snap);
    if (rc != 0) {
        cp_snapshot_free(snap);
        return -1;
    }
    set_index(cds);
    set_index(eds);
    *out = snap;
    return 0;
}

/* --- sequences ------------------------------------------------------------ */

typedef Xdsnode__Cp__V1__SequenceStep pb_step;

/* Replaces base[i] whose name (name_of) matches each of `over`, or appends
 * it; `into` holds n_base + n_over slots. Returns the new count. */
static size_t merge_by_name(void **into, void *const *base, size_t n_base, void *const *over,
                            size_t n_over, const char *(*name_of)(const void *))
{
    size_t n = n_base;
    if (n_base > 0) /* base may be NULL when empty */
        memcpy(into, base, n_base * sizeof(*into));
    for (size_t i = 0; i < n_over; i++) {
        size_t j = 0;
        while (j < n && strcmp(name_of(into[j]), name_of(over[i])) != 0)
            j++;
        into[j] = over[i];
        if (j == n)
            n++;
    }
    return n;
}

static const char *cluster_name_of(const void *m) { return ((const pb_cluster *)m)->name; }
static const char *cla_name_of(const void *m) { return ((const pb_cla *)m)->cluster_name; }

/* The scenario with one step applied (no sequence of its own). */
static int step_snapshot(const pb_scenario *sc, const pb_step *step, cp_snapshot **out)
{
    pb_scenario merged = *sc;
    void **clusters = calloc(sc->n_clusters + step->n_clusters + 1, sizeof(void *));
    void **endpoints = calloc(sc->n_endpoints + step->n_endpoints + 1, sizeof(void *));
    int rc = -1;

    if (clusters != NULL && endpoints != NULL) {
        merged.sequence = NULL;
        merged.n_clusters = merge_by_name(clusters, (void *const *)sc->clusters, sc->n_clusters,
                                          (void *const *)step->clusters, step->n_clusters,
                                          cluster_name_of);
        merged.clusters = (pb_cluster **)clusters;
        merged.n_endpoints = merge_by_name(endpoints, (void *const *)sc->endpoints,
                                           sc->n_endpoints, (void *const *)step->endpoints,
                                           step->n_endpoints, cla_name_of);
        merged.endpoints = (pb_cla **)endpoints;
        rc = snapshot_from_scenario(&merged, out);
    }
    free(clusters);
    free(endpoints);
    return rc;
}

/* Builds snap->sequence from the scenario's Sequence, if it has one. */
static int sequence_build(const pb_scenario *sc, cp_snapshot *snap)
{
    const Xdsnode__Cp__V1__Sequence *sq = sc->sequence;
    if (sq == NULL || sq->count == 0 || sq->n_steps == 0)
        return 0;
    cp_sequence *seq = calloc(1, sizeof(*seq));
    if (seq == NULL)
        return -1;
    snap->sequence = seq;
    seq->count = sq->count;
    seq->next = 1;
    seq->base_version = strdup(snap->version);
    seq->steps = calloc(sq->n_steps, sizeof(*seq->steps));
    if (seq->base_version == NULL || seq->steps == NULL)
        return -1;
    for (size_t i = 0; i < sq->n_steps; i++) {
        if (step_snapshot(sc, sq->steps[i], &seq->steps[i]) != 0)
            return -1;
        seq->n_steps++;
    }
    return 0;
}

void cp_sequence_free(cp_sequence *seq)
{
    if (seq == NULL)
        return;
    for (size_t i = 0; i < seq->n_steps; i++)
        cp_snapshot_free(seq->steps[i]);
    free(seq->steps);
    free(seq->base_version);
    free(seq);
}

static int set_copy(cp_resource_set *dst, const cp_resource_set *src)
{
    if (set_reserve(dst, src->n) != 0)
        return -1;
    for (size_t i = 0; i < src->n; i++) {
        cp_resource *d = &dst->items[i];
        const cp_resource *r = &src->items[i];
        d->name = strdup(r->name);
        d->data = malloc(r->len ? r->len : 1);
        if (d->name == NULL || d->data == NULL) {
            free(d->name);
            free(d->data);
            return -1;
        }
        memcpy(d->data, r->data, r->len);
        d->len = r->len;
        memcpy(d->version, r->version, CP_HASH_LEN);
        dst->n++;
    }
    memcpy(dst->by_name, src->by_name, src->n * sizeof(*src->by_name));
    return 0;
}

int cp_sequence_next(cp_sequence *seq, cp_snapshot **out)
{
    if (seq->next > seq->count)
        return 1;
    const cp_snapshot *step = seq->steps[(seq->next - 1) % seq->n_steps];
    char suffix[16];
    cp_snapshot *snap = calloc(1, sizeof(*snap));
    int rc = snap ? 0 : -1;
    for (int t = 0; rc == 0 && t < CP_TYPE_COUNT; t++)
        rc = set_copy(&snap->types[t], &step->types[t]);
    if (rc == 0)
        rc = snapshot_set_withheld(snap, step->withheld, step->n_withheld);
    if (rc == 0) {
        snprintf(suffix, sizeof(suffix), "-%u", seq->next);
        snap->version = malloc(strlen(seq->base_version) + strlen(suffix) + 1);
        rc = snap->version ? 0 : -1;
    }
    if (rc != 0) {
        cp_snapshot_free(snap);
        return -1;
    }
    strcpy(snap->version, seq->base_version);
    strcat(snap->version, suffix);
    seq->next++;
    *out = snap;
    return 0;
}

/* --- scenario files ----------------------------------------------------- */

int cp_snapshot_load_file(const char *path, cp_snapshot **out, char *err, size_t errlen)
{
    char *text;
    size_t len;

    if (config_file_read(path, SCENARIO_MAX_BYTES, &text, &len, err, errlen) != 0)
        return -1;
    ProtobufCMessage *msg = NULL;
    int rc = config_text_decode(&xdsnode__cp__v1__scenario__descriptor, text, len,
                                config_path_is_json(path), path, &msg, err, errlen);
    free(text);
    if (rc != 0)
        return -1;
    rc = snapshot_from_scenario((const pb_scenario *)msg, out);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (rc != 0)
        snprintf(err, errlen, "%s: out of memory", path);
    return rc;
}

/* --- scale generator ---------------------------------------------------- */

static json_t *gen_cluster_json(unsigned index)
{
    char name[32];
    snprintf(name, sizeof(name), "cluster-%05u", index);
    return json_pack("{s:s, s:s, s:s, s:{s:{s:{}, s:s, s:s}}}", "name", name, "type", "EDS",
                     "connect_timeout", GEN_CONNECT_TIMEOUT, "eds_cluster_config",
                     "eds_config", "ads", "initial_fetch_timeout", "0s",
                     "resource_api_version", "V3");
}

/* Endpoint e of cluster c: 127.x.y.z numbered from 127.0.0.1 upwards; from
 * the second generation on, endpoint 0 moves to 127.(128 + g % 64).c.c. */
static void gen_address(unsigned c, unsigned e, unsigned n_endpoints, unsigned generation,
                        char *buf, size_t buflen)
{
    if (e == 0 && generation > 1) {
        snprintf(buf, buflen, "127.%u.%u.%u", 128 + generation % 64, (c >> 8) & 255, c & 255);
        return;
    }
    unsigned long k = (unsigned long)c * n_endpoints + e + 1;
    snprintf(buf, buflen, "127.%lu.%lu.%lu", (k >> 16) & 127, (k >> 8) & 255, k & 255);
}

static json_t *gen_cla_json(unsigned c, unsigned n_endpoints, unsigned generation)
{
    char name[32], addr[32];
    json_t *lbs = json_array();

    snprintf(name, sizeof(name), "cluster-%05u", c);
    for (unsigned e = 0; e < n_endpoints; e++) {
        gen_address(c, e, n_endpoints, generation, addr, sizeof(addr));
        json_array_append_new(
            lbs, json_pack("{s:{s:{s:{s:s, s:i}}}}", "endpoint", "address", "socket_address",
                           "address", addr, "port_value", GEN_ENDPOINT_PORT));
    }
    return json_pack("{s:s, s:[{s:o}]}", "cluster_name", name, "endpoints", "lb_endpoints",
                     lbs);
}

/* Decodes generated JSON with the shared mapping and appends it. */
static int gen_add(cp_resource_set *set, const ProtobufCMessageDescriptor *desc, json_t *json,
                   char *err, size_t errlen)
{
    ProtobufCMessage *msg = NULL;
    int rc = -1;

    if (json != NULL && pbjson_decode(desc, json, "", &msg, err, errlen) == 0) {
        const char *name = json_string_value(json_object_get(json, desc == PB_CLUSTER_DESC
                                                                       ? "name"
                                                                       : "cluster_name"));
        rc = set_add(set, name, msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    json_decref(json);
    return rc;
}

int cp_snapshot_generate(unsigned n_clusters, unsigned n_endpoints, unsigned generation,
                         cp_snapshot **out, char *err, size_t errlen)
{
    char version[32];
    cp_snapshot *snap = calloc(1, sizeof(*snap));
    int rc = snap ? 0 : -1;

    snprintf(err, errlen, "generator: out of memory");
    if (rc == 0)
        rc = set_reserve(&snap->types[CP_TYPE_CLUSTER], n_clusters) |
             set_reserve(&snap->types[CP_TYPE_CLA], n_clusters);
    for (unsigned c = 0; rc == 0 && c < n_clusters; c++) {
        rc = gen_add(&snap->types[CP_TYPE_CLUSTER], PB_CLUSTER_DESC, gen_cluster_json(c), err,
                     errlen);
        if (rc == 0)
            rc = gen_add(&snap->types[CP_TYPE_CLA], PB_CLA_DESC,
                         gen_cla_json(c, n_endpoints, generation), err, errlen);
    }
    snprintf(version, sizeof(version), "gen-%u", generation);
    if (rc == 0)
        rc = snapshot_set_version(snap, version);
    if (rc != 0) {
        cp_snapshot_free(snap);
        return -1;
    }
    set_index(&snap->types[CP_TYPE_CLUSTER]);
    set_index(&snap->types[CP_TYPE_CLA]);
    *out = snap;
    return 0;
}
