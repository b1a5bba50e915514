/* stats.c: Envoy-named counters and gauges and their admin output (stats.h). */
#include "xdsnode/stats.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/strbuf.h"

#define FILTER_MAX 1024

struct stats_store {
    stats_scope **scopes;
    size_t n, cap;
};

/* One rendered stat. */
typedef struct {
    char *name;
    const stats_scope *scope;
    size_t idx;
} stat_row;

typedef struct {
    int used_only;
    int has_filter;
    regex_t filter;
} stat_query;

/* --- scopes ---------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

stats_scope *stats_scope_create(const char *prefix, const stat_def *defs, size_t n,
                                const char *tag_base, const char *tag_name, const char *tag_value)
{
    stats_scope *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->prefix = strdup(prefix);
    s->tag_name = dup_or_null(tag_name);
    s->tag_value = dup_or_null(tag_value);
    s->tag_base = tag_base;
    s->defs = defs;
    s->n = n;
    s->values = calloc(n ? n : 1, sizeof(*s->values));
    s->used = calloc(n ? n : 1, sizeof(*s->used));
    atomic_init(&s->refs, 1);
    if (s->prefix == NULL || s->values == NULL || s->used == NULL ||
        (tag_name && (s->tag_name == NULL || s->tag_value == NULL))) {
        stats_scope_unref(s);
        return NULL;
    }
    return s;
}

void stats_scope_ref(stats_scope *s) { atomic_fetch_add(&s->refs, 1); }

void stats_scope_unref(stats_scope *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    free(s->prefix);
    free(s->tag_name);
    free(s->tag_value);
    free((void *)s->values);
    free((void *)s->used);
    free(s);
}

char *stats_sanitize_name(const char *name)
{
    char *out = strdup(name);
    for (char *p = out; p && *p; p++) {
        if (*p == ':')
            *p = '_';
    }
    return out;
}

stats_scope *stats_scope_create_named(const char *base, const char *name, const stat_def *defs,
                                      size_t n, const char *tag_name)
{
    char *clean = stats_sanitize_name(name);
    if (clean == NULL)
        return NULL;
    size_t len = strlen(base) + strlen(clean) + 2;
    char *prefix = malloc(len);
    stats_scope *s = NULL;
    if (prefix != NULL) {
        snprintf(prefix, len, "%s%s.", base, clean);
        s = stats_scope_create(prefix, defs, n, base, tag_name, clean);
    }
    free(prefix);
    free(clean);
    return s;
}

/* --- store ----------------------------------------------------------------- */

stats_store *stats_store_create(void) { return calloc(1, sizeof(stats_store)); }

void stats_store_destroy(stats_store *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++)
        stats_scope_unref(st->scopes[i]);
    free(st->scopes);
    free(st);
}

int stats_store_add(stats_store *st, stats_scope *s)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 32;
        stats_scope **p = realloc(st->scopes, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        st->scopes = p;
        st->cap = cap;
    }
    stats_scope_ref(s);
    st->scopes[st->n++] = s;
    return 0;
}

void stats_store_remove(stats_store *st, stats_scope *s)
{
    for (size_t i = 0; i < st->n; i++) {
        if (st->scopes[i] == s) {
            st->scopes[i] = st->scopes[--st->n];
            stats_scope_unref(s);
            return;
        }
    }
}

/* --- collecting rows --------------------------------------------------------- */

static int parse_query(const char *query, stat_query *q)
{
    char filter[FILTER_MAX], flag[8];
    memset(q, 0, sizeof(*q));
    q->used_only = admin_query_param(query, "usedonly", flag, sizeof(flag)) != 0;
    if (admin_query_param(query, "filter", filter, sizeof(filter)) == 1 && filter[0]) {
        if (regcomp(&q->filter, filter, REG_EXTENDED | REG_NOSUB) != 0)
            return -1;
        q->has_filter = 1;
    }
    return 0;
}

static void free_query(stat_query *q)
{
    if (q->has_filter)
        regfree(&q->filter);
}

static int cmp_rows(const void *a, const void *b)
{
    return strcmp(((const stat_row *)a)->name, ((const stat_row *)b)->name);
}

static void free_rows(stat_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].name);
    free(rows);
}

/* Every stat that passes the query, sorted by name. */
static stat_row *collect(const stats_store *st, const stat_query *q, size_t *count)
{
    size_t total = 0, n = 0;
    for (size_t i = 0; i < st->n; i++)
        total += st->scopes[i]->n;
    stat_row *rows = calloc(total ? total : 1, sizeof(*rows));
    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < st->n; i++) {
        const stats_scope *s = st->scopes[i];
        for (size_t j = 0; j < s->n; j++) {
            if (q->used_only && !atomic_load(&((stats_scope *)s)->used[j]))
                continue;
            size_t len = strlen(s->prefix) + strlen(s->defs[j].name) + 1;
            char *name = malloc(len);
            if (name == NULL) {
                free_rows(rows, n);
                return NULL;
            }
            snprintf(name, len, "%s%s", s->prefix, s->defs[j].name);
            if (q->has_filter && regexec(&q->filter, name, 0, NULL, 0) != 0) {
                free(name);
                continue;
            }
            rows[n++] = (stat_row){name, s, j};
        }
    }
    qsort(rows, n, sizeof(*rows), cmp_rows);
    *count = n;
    return rows;
}

static void print_value(strbuf *b, const stat_row *r)
{
    uint64_t v = stats_get(r->scope, r->idx);
    if (r->scope->defs[r->idx].type == STAT_GAUGE)
        strbuf_printf(b, "%lld", (long long)(int64_t)v);
    else
        strbuf_printf(b, "%llu", (unsigned long long)v);
}

static void json_escape(strbuf *b, const char *s)
{
    strbuf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            strbuf_printf(b, "\\%c", c);
        else if (c < 0x20)
            strbuf_printf(b, "\\u%04x", c);
        else
            strbuf_append(b, (const char *)&c, 1);
    }
    strbuf_puts(b, "\"");
}

static int finish(strbuf *b, admin_response *resp, const char *content_type)
{
    size_t len;
    char *text = strbuf_take(b, &len);
    if (text == NULL)
        return -1;
    resp->status = 200;
    resp->content_type = content_type;
    resp->body = text;
    resp->body_len = len;
    return 0;
}

/* --- /stats ------------------------------------------------------------------- */

static void render_text(strbuf *b, const stat_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        strbuf_printf(b, "%s: ", rows[i].name);
        print_value(b, &rows[i]);
        strbuf_puts(b, "\n");
    }
}

static void render_json(strbuf *b, const stat_row *rows, size_t n)
{
    strbuf_puts(b, "{\"stats\":[");
    for (size_t i = 0; i < n; i++) {
        strbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        json_escape(b, rows[i].name);
        strbuf_puts(b, ",\"value\":");
        print_value(b, &rows[i]);
        strbuf_puts(b, "}");
    }
    strbuf_puts(b, "]}");
}

static int render_prometheus_rows(strbuf *b, const stats_store *st, const stat_query *q);

int stats_render(const stats_store *st, const char *query, admin_response *resp)
{
    char format[32] = "";
    stat_query q;
    if (parse_query(query, &q) != 0)
        return admin_response_printf(resp, 400, "Invalid regex: filter\n");
    admin_query_param(query, "format", format, sizeof(format));
    strbuf b;
    strbuf_init(&b);
    int rc = 0;
    const char *ctype = "text/plain; charset=UTF-8";
    if (strcmp(format, "prometheus") == 0) {
        rc = render_prometheus_rows(&b, st, &q);
    } else if (format[0] == '\0' || strcmp(format, "json") == 0) {
        size_t n = 0;
        stat_row *rows = collect(st, &q, &n);
        if (rows == NULL) {
            rc = -1;
        } else if (format[0]) {
            render_json(&b, rows, n);
            ctype = "application/json";
        } else {
            render_text(&b, rows, n);
        }
        if (rows)
            free_rows(rows, n);
    } else {
        free_query(&q);
        strbuf_free(&b);
        return admin_response_printf(resp, 400, "usage: /stats?format=(html|active-html|json|prometheus|text)\n");
    }
    free_query(&q);
    if (rc != 0) {
        strbuf_free(&b);
        return -1;
    }
    return finish(&b, resp, ctype);
}

/* --- /stats/prometheus ---------------------------------------------------------- */

typedef struct {
    char *metric; /* envoy_cluster_upstream_cx_total */
    const stat_row *row;
} prom_row;

static char *prom_metric_name(const stats_scope *s, size_t idx)
{
    const char *base = s->tag_name ? (s->tag_base ? s->tag_base : "") : s->prefix;
    size_t len = strlen("envoy_") + strlen(base) + strlen(s->defs[idx].name) + 2;
    char *m = malloc(len);
    if (m == NULL)
        return NULL;
    snprintf(m, len, "envoy_%s%s", base, s->defs[idx].name);
    for (char *p = m; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok)
            *p = '_';
    }
    return m;
}

static int cmp_prom(const void *a, const void *b)
{
    const prom_row *x = a, *y = b;
    int c = strcmp(x->metric, y->metric);
    if (c != 0)
        return c;
    const char *vx = x->row->scope->tag_value ? x->row->scope->tag_value : "";
    const char *vy = y->row->scope->tag_value ? y->row->scope->tag_value : "";
    return strcmp(vx, vy);
}

static void prom_label_value(strbuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            strbuf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            strbuf_puts(b, "\\n");
        else
            strbuf_append(b, v, 1);
    }
}

static void render_prom_line(strbuf *b, const prom_row *p, const prom_row *prev)
{
    const stats_scope *s = p->row->scope;
    if (prev == NULL || strcmp(prev->metric, p->metric) != 0)
        strbuf_printf(b, "# TYPE %s %s\n", p->metric,
                      s->defs[p->row->idx].type == STAT_COUNTER ? "counter" : "gauge");
    strbuf_puts(b, p->metric);
    if (s->tag_name) {
        strbuf_printf(b, "{%s=\"", s->tag_name);
        prom_label_value(b, s->tag_value);
        strbuf_puts(b, "\"}");
    } else {
        strbuf_puts(b, "{}");
    }
    strbuf_puts(b, " ");
    print_value(b, p->row);
    strbuf_puts(b, "\n");
}

static int render_prometheus_rows(strbuf *b, const stats_store *st, const stat_query *q)
{
    size_t n = 0;
    stat_row *rows = collect(st, q, &n);
    if (rows == NULL)
        return -1;
    prom_row *prom = calloc(n ? n : 1, sizeof(*prom));
    int rc = prom ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        prom[i].row = &rows[i];
        prom[i].metric = prom_metric_name(rows[i].scope, rows[i].idx);
        if (prom[i].metric == NULL)
            rc = -1;
    }
    if (rc == 0) {
        qsort(prom, n, sizeof(*prom), cmp_prom);
        for (size_t i = 0; i < n; i++)
            render_prom_line(b, &prom[i], i ? &prom[i - 1] : NULL);
    }
    for (size_t i = 0; prom && i < n; i++)
        free(prom[i].metric);
    free(prom);
    free_rows(rows, n);
    return rc;
}

int stats_render_prometheus(const stats_store *st, const char *query, admin_response *resp)
{
    stat_query q;
    if (parse_query(query, &q) != 0)
        return admin_response_printf(resp, 400, "Invalid regex: filter\n");
    strbuf b;
    strbuf_init(&b);
    int rc = render_prometheus_rows(&b, st, &q);
    free_query(&q);
    if (rc != 0) {
        strbuf_free(&b);
        return -1;
    }
    return finish(&b, resp, "text/plain; version=0.0.4");
}
