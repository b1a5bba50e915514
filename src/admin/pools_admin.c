/* pools_admin.c: /pools (pools_admin.h). */
#include "xdsnode/pools_admin.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/http1_pool.h"
#include "xdsnode/strbuf.h"

static const char *const count_names[POOL_COUNT_FIELDS] = {
    [POOL_COUNT_CONNECTING] = "connecting", [POOL_COUNT_ACTIVE] = "active",
    [POOL_COUNT_IDLE] = "idle",             [POOL_COUNT_DRAINING] = "draining",
    [POOL_COUNT_STREAMS] = "streams",       [POOL_COUNT_PENDING] = "pending",
};

typedef struct {
    unsigned worker_id;
    char *cluster;
    char host[96];
    const char *protocol;   /* static string */
    int cluster_draining;
    int tls;
    uint32_t max_connections; /* the generation's DEFAULT threshold */
    size_t counts[POOL_COUNT_FIELDS];
} pool_row;

typedef struct {
    pool_row *rows;
    size_t n, cap;
    int failed;
} pool_rows;

/* Visitor: copies one pool's view (runs under the worker's pool lock,
 * so it only copies). */
static void collect_row(void *ctx, const worker_pool_view *v)
{
    pool_rows *rs = ctx;
    if (rs->failed)
        return;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        pool_row *nr = realloc(rs->rows, cap * sizeof(*nr));
        if (nr == NULL) {
            rs->failed = 1;
            return;
        }
        rs->rows = nr;
        rs->cap = cap;
    }
    pool_row *r = &rs->rows[rs->n];
    const cluster_host *h = &v->cfg->hosts[v->host];
    r->worker_id = v->worker_id;
    r->cluster = strdup(v->cfg->name);
    if (r->cluster == NULL) {
        rs->failed = 1;
        return;
    }
    cluster_host_format(h, r->host, sizeof(r->host));
    r->protocol = v->protocol;
    r->cluster_draining = v->cluster_draining;
    r->tls = v->tls;
    r->max_connections = v->cfg->thresholds[PRIORITY_DEFAULT].max_connections;
    memcpy(r->counts, v->counts, sizeof(r->counts));
    rs->n++;
}

static void rows_free(pool_rows *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->rows[i].cluster);
    free(rs->rows);
}

static size_t row_connections(const pool_row *r)
{
    return r->counts[POOL_COUNT_CONNECTING] + r->counts[POOL_COUNT_ACTIVE] + r->counts[POOL_COUNT_IDLE] +
           r->counts[POOL_COUNT_DRAINING];
}

static void add_totals(size_t totals[POOL_COUNT_FIELDS], const pool_row *r)
{
    for (int i = 0; i < POOL_COUNT_FIELDS; i++)
        totals[i] += r->counts[i];
}

static json_t *counts_json(const size_t counts[POOL_COUNT_FIELDS])
{
    json_t *cx = json_object();
    size_t total = 0;
    for (int i = POOL_COUNT_CONNECTING; i <= POOL_COUNT_DRAINING; i++) {
        json_object_set_new(cx, count_names[i], json_integer((json_int_t)counts[i]));
        total += counts[i];
    }
    json_object_set_new(cx, "total", json_integer((json_int_t)total));
    return json_pack("{s:o,s:I,s:I}", "connections", cx, "streams", (json_int_t)counts[POOL_COUNT_STREAMS],
                     "pending", (json_int_t)counts[POOL_COUNT_PENDING]);
}

static json_t *row_json(const pool_row *r)
{
    json_t *o = counts_json(r->counts);
    json_object_set_new(o, "worker", json_integer(r->worker_id));
    json_object_set_new(o, "cluster", json_string(r->cluster));
    json_object_set_new(o, "host", json_string(r->host));
    json_object_set_new(o, "protocol", json_string(r->protocol));
    json_object_set_new(o, "cluster_draining", json_boolean(r->cluster_draining));
    json_object_set_new(o, "tls", json_boolean(r->tls));
    json_object_set_new(o, "cluster_max_connections", json_integer(r->max_connections));
    return o;
}

static int render_json(const pool_rows *rs, size_t n_workers, admin_response *resp)
{
    json_t *pools = json_array();
    size_t totals[POOL_COUNT_FIELDS] = {0};
    for (size_t i = 0; i < rs->n; i++) {
        json_array_append_new(pools, row_json(&rs->rows[i]));
        add_totals(totals, &rs->rows[i]);
    }
    json_t *root = json_pack("{s:I,s:I,s:o,s:o}", "workers", (json_int_t)n_workers, "pool_count",
                             (json_int_t)rs->n, "pools", pools, "totals", counts_json(totals));
    char *text = root ? json_dumps(root, JSON_INDENT(1)) : NULL;
    json_decref(root);
    if (text == NULL)
        return -1;
    int rc = admin_response_set_text(resp, 200, "application/json", text, strlen(text));
    free(text);
    return rc;
}

static void text_row(strbuf *b, const char *wid, const char *cluster, const char *host,
                     const char *proto, const size_t c[POOL_COUNT_FIELDS], size_t conns, const char *note)
{
    strbuf_printf(b, "%-6s %-24s %-22s %-6s %5zu %10zu %6zu %4zu %8zu %7zu %7zu  %s\n", wid, cluster,
                  host, proto, conns, c[POOL_COUNT_CONNECTING], c[POOL_COUNT_ACTIVE], c[POOL_COUNT_IDLE],
                  c[POOL_COUNT_DRAINING], c[POOL_COUNT_STREAMS], c[POOL_COUNT_PENDING], note);
}

static int render_text(const pool_rows *rs, size_t n_workers, admin_response *resp)
{
    strbuf b;
    strbuf_init(&b);
    strbuf_printf(&b, "# %zu worker(s), %zu pool(s): one pool per worker per host, connections opened on demand;\n"
                  "# max_connections is a circuit breaker over all of a cluster's pools, not a pool size.\n",
                  n_workers, rs->n);
    strbuf_printf(&b, "%-6s %-24s %-22s %-6s %5s %10s %6s %4s %8s %7s %7s  %s\n", "worker", "cluster", "host",
                  "proto", "conns", "connecting", "active", "idle", "draining", "streams", "pending", "note");
    size_t totals[POOL_COUNT_FIELDS] = {0}, conns = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const pool_row *r = &rs->rows[i];
        char w[16], note[64];
        snprintf(w, sizeof(w), "%u", r->worker_id);
        snprintf(note, sizeof(note), "%s%smax_connections=%u", r->cluster_draining ? "old config, draining; " : "",
                 r->tls ? "tls; " : "", r->max_connections);
        text_row(&b, w, r->cluster, r->host, r->protocol, r->counts, row_connections(r), note);
        add_totals(totals, r);
        conns += row_connections(r);
    }
    text_row(&b, "total", "", "", "", totals, conns, "");
    size_t len;
    char *text = strbuf_take(&b, &len);
    if (text == NULL)
        return -1;
    int rc = admin_response_set_text(resp, 200, "text/plain; charset=UTF-8", text, len);
    free(text);
    return rc;
}

int pools_admin_render(worker *const *workers, size_t n_workers, const char *query, admin_response *resp)
{
    pool_rows rs = {0};
    for (size_t i = 0; i < n_workers; i++)
        worker_visit_pools(workers[i], collect_row, &rs);
    int rc = -1;
    char format[32];
    if (!rs.failed) {
        if (admin_query_param(query, "format", format, sizeof(format)) == 1 && strcmp(format, "json") == 0)
            rc = render_json(&rs, n_workers, resp);
        else
            rc = render_text(&rs, n_workers, resp);
    }
    rows_free(&rs);
    return rc;
}
