/* router.c: inline route tables and Envoy's host/path matching (router.h). */
#include "xdsnode/router.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xdsnode/cluster_config.h"

static int fail(char *err, size_t errlen, const char *path, const char *reason)
{
    snprintf(err, errlen, "%s: %s", path, reason);
    return -1;
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

static int translate_domain(const char *d, domain_pattern *out)
{
    size_t n = strlen(d);
    if (strcmp(d, "*") == 0) {
        out->kind = DOMAIN_ANY;
        out->text = lower_dup("", 0);
    } else if (n > 1 && d[0] == '*') {
        out->kind = DOMAIN_SUFFIX;
        out->text = lower_dup(d + 1, n - 1);
    } else if (n > 1 && d[n - 1] == '*') {
        out->kind = DOMAIN_PREFIX;
        out->text = lower_dup(d, n - 1);
    } else {
        out->kind = DOMAIN_EXACT;
        out->text = lower_dup(d, n);
    }
    out->len = out->text ? strlen(out->text) : 0;
    return out->text ? 0 : -1;
}

static int struct_flag(const Google__Protobuf__Struct *st, const char *key)
{
    for (size_t i = 0; st && i < st->n_fields; i++) {
        const Google__Protobuf__Value *v = st->fields[i]->value;
        if (strcmp(st->fields[i]->key, key) == 0 && v &&
            v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE)
            return v->bool_value;
    }
    return 0;
}

/* metadata.filter_metadata["xdsnode"].istio_egress == true */
static int egress_enabled(const Envoy__Config__Core__V3__Metadata *md)
{
    for (size_t i = 0; md && i < md->n_filter_metadata; i++) {
        if (strcmp(md->filter_metadata[i]->key, EGRESS_METADATA_NAMESPACE) == 0)
            return struct_flag(md->filter_metadata[i]->value, EGRESS_METADATA_KEY);
    }
    return 0;
}

static uint64_t duration_ms(const pb_duration *d)
{
    return d->seconds < 0 ? 0 : (uint64_t)d->seconds * 1000 + (uint64_t)(d->nanos / 1000000);
}

static unsigned parse_retry_on(const char *s)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        {"5xx", RETRY_ON_5XX}, {"gateway-error", RETRY_ON_GATEWAY_ERROR},
        {"connect-failure", RETRY_ON_CONNECT_FAILURE}, {"reset", RETRY_ON_RESET},
        {"retriable-status-codes", RETRY_ON_RETRIABLE_STATUS},
    };
    unsigned bits = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (strlen(names[i].name) == n && strncmp(s, names[i].name, n) == 0)
                bits |= names[i].bit;
        }
        s += n;
        while (*s == ',' || *s == ' ')
            s++;
    }
    return bits;
}

static int translate_retry(const Envoy__Config__Route__V3__RetryPolicy *rp, route_entry *r)
{
    if (rp == NULL)
        return 0;
    r->retry_on = parse_retry_on(rp->retry_on);
    r->num_retries = rp->num_retries ? rp->num_retries->value : ROUTE_DEFAULT_NUM_RETRIES;
    if (rp->n_retriable_status_codes) {
        r->retriable_status = malloc(rp->n_retriable_status_codes * sizeof(uint32_t));
        if (r->retriable_status == NULL)
            return -1;
        memcpy(r->retriable_status, rp->retriable_status_codes,
               rp->n_retriable_status_codes * sizeof(uint32_t));
        r->n_retriable_status = rp->n_retriable_status_codes;
    }
    return 0;
}

static int translate_weighted(const Envoy__Config__Route__V3__WeightedCluster *wc, route_entry *r,
                              const char *path, char *err, size_t errlen)
{
    r->targets = calloc(wc->n_clusters ? wc->n_clusters : 1, sizeof(weighted_target));
    if (r->targets == NULL)
        return fail(err, errlen, path, "out of memory");
    for (size_t i = 0; i < wc->n_clusters; i++) {
        const Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw = wc->clusters[i];
        if (cw->name[0] == '\0')
            return fail(err, errlen, path, "weighted_clusters: a cluster name is required "
                                           "(cluster_header is not supported there)");
        r->targets[i].name = strdup(cw->name);
        r->targets[i].weight = cw->weight ? cw->weight->value : 0;
        r->total_weight += r->targets[i].weight;
        r->n_targets++;
        if (r->targets[i].name == NULL)
            return fail(err, errlen, path, "out of memory");
    }
    if (r->total_weight == 0)
        return fail(err, errlen, path, "weighted_clusters: total weight must be greater than 0");
    return 0;
}

static int translate_action(const Envoy__Config__Route__V3__Route *src, route_entry *r,
                            const char *path, char *err, size_t errlen)
{
    char p[600];
    snprintf(p, sizeof(p), "%s.route", path);
    if (src->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE)
        return fail(err, errlen, path, "unsupported route action (only `route` is implemented)");
    const Envoy__Config__Route__V3__RouteAction *ra = src->route;
    r->timeout_ms = ra->timeout ? duration_ms(ra->timeout) : ROUTE_DEFAULT_TIMEOUT_MS;
    r->priority = ra->priority == ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH ? PRIORITY_HIGH
                                                                                 : PRIORITY_DEFAULT;
    r->not_found_status =
        ra->cluster_not_found_response_code ==
                ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__NOT_FOUND ? 404
        : ra->cluster_not_found_response_code ==
                ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__INTERNAL_SERVER_ERROR
            ? 500 : 503;
    if (translate_retry(ra->retry_policy, r) != 0)
        return fail(err, errlen, p, "out of memory");
    switch (ra->cluster_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER:
        r->action = ACTION_CLUSTER;
        r->cluster = strdup(ra->cluster);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER:
        r->action = egress_enabled(src->metadata) ? ACTION_EGRESS : ACTION_CLUSTER_HEADER;
        r->cluster = lower_dup(ra->cluster_header, strlen(ra->cluster_header));
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS:
        r->action = ACTION_WEIGHTED;
        return translate_weighted(ra->weighted_clusters, r, p, err, errlen);
    default:
        return fail(err, errlen, p, "one of cluster, cluster_header or weighted_clusters is required");
    }
    if (egress_enabled(src->metadata) && r->action != ACTION_EGRESS)
        return fail(err, errlen, path, "metadata.filter_metadata[\"xdsnode\"].istio_egress needs "
                                       "route.cluster_header (see README)");
    return r->cluster ? 0 : fail(err, errlen, p, "out of memory");
}

static int translate_match(const Envoy__Config__Route__V3__RouteMatch *m, route_entry *r,
                           const char *path, char *err, size_t errlen)
{
    char p[600];
    snprintf(p, sizeof(p), "%s.match", path);
    if (m == NULL)
        return fail(err, errlen, p, "is required");
    if (m->n_headers || m->n_query_parameters || m->runtime_fraction || m->grpc)
        return fail(err, errlen, p, "unsupported: header, query, runtime and grpc matchers are "
                                    "not implemented");
    r->case_sensitive = m->case_sensitive ? m->case_sensitive->value : 1;
    switch (m->path_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX:
        r->match = MATCH_PREFIX;
        r->pattern = strdup(m->prefix);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH:
        r->match = MATCH_PATH;
        r->pattern = strdup(m->path);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX: {
        r->match = MATCH_REGEX;
        size_t n = strlen(m->safe_regex->regex);
        r->pattern = malloc(n + 3);
        if (r->pattern == NULL)
            return fail(err, errlen, p, "out of memory");
        snprintf(r->pattern, n + 3, "^%s$", m->safe_regex->regex); /* RE2 full match */
        if (regcomp(&r->regex, r->pattern, REG_EXTENDED | REG_NOSUB |
                                               (r->case_sensitive ? 0 : REG_ICASE)) != 0) {
            free(r->pattern);
            r->pattern = NULL;
            return fail(err, errlen, p, "safe_regex: invalid regex");
        }
        break;
    }
    default:
        return fail(err, errlen, p, "unsupported path specifier (prefix, path and safe_regex are "
                                    "implemented)");
    }
    if (r->pattern == NULL)
        return fail(err, errlen, p, "out of memory");
    r->pattern_len = strlen(r->pattern);
    return 0;
}

static int translate_vhost(const Envoy__Config__Route__V3__VirtualHost *src, virtual_host *vh,
                           const char *path, char *err, size_t errlen)
{
    char p[600];
    vh->name = strdup(src->name);
    vh->domains = calloc(src->n_domains ? src->n_domains : 1, sizeof(domain_pattern));
    vh->routes = calloc(src->n_routes ? src->n_routes : 1, sizeof(route_entry));
    if (!vh->name || !vh->domains || !vh->routes)
        return fail(err, errlen, path, "out of memory");
    if (src->n_domains == 0)
        return fail(err, errlen, path, "domains: must have at least one domain");
    for (size_t i = 0; i < src->n_domains; i++, vh->n_domains++) {
        if (translate_domain(src->domains[i], &vh->domains[i]) != 0)
            return fail(err, errlen, path, "out of memory");
    }
    for (size_t i = 0; i < src->n_routes; i++) {
        snprintf(p, sizeof(p), "%s.routes[%zu]", path, i);
        route_entry *r = &vh->routes[vh->n_routes++];
        if (translate_match(src->routes[i]->match, r, p, err, errlen) != 0 ||
            translate_action(src->routes[i], r, p, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int domain_taken(const route_table *rt, const domain_pattern *d)
{
    for (size_t i = 0; i < rt->n_vhosts; i++) {
        for (size_t j = 0; j < rt->vhosts[i].n_domains; j++) {
            const domain_pattern *o = &rt->vhosts[i].domains[j];
            if (o->kind == d->kind && strcmp(o->text, d->text) == 0)
                return 1;
        }
    }
    return 0;
}

int route_table_translate(const Envoy__Config__Route__V3__RouteConfiguration *rc, const char *path,
                          route_table *out, char *err, size_t errlen)
{
    char p[600];
    memset(out, 0, sizeof(*out));
    /* validate_clusters defaults to true for an inline route_config */
    out->validate_clusters = rc->validate_clusters ? rc->validate_clusters->value : 1;
    out->ignore_port = rc->ignore_port_in_host_matching;
    out->vhosts = calloc(rc->n_virtual_hosts ? rc->n_virtual_hosts : 1, sizeof(virtual_host));
    if (out->vhosts == NULL)
        return fail(err, errlen, path, "out of memory");
    for (size_t i = 0; i < rc->n_virtual_hosts; i++) {
        snprintf(p, sizeof(p), "%s.virtual_hosts[%zu]", path, i);
        virtual_host *vh = &out->vhosts[i];
        if (translate_vhost(rc->virtual_hosts[i], vh, p, err, errlen) != 0) {
            out->n_vhosts = i + 1;
            route_table_free(out);
            return -1;
        }
        for (size_t j = 0; j < vh->n_domains; j++) {
            if (domain_taken(out, &vh->domains[j])) {
                char why[300];
                snprintf(why, sizeof(why), "only unique values for domains are permitted. "
                         "Duplicate entry of domain %s", rc->virtual_hosts[i]->domains[j]);
                out->n_vhosts = i + 1;
                route_table_free(out);
                return fail(err, errlen, p, why);
            }
        }
        out->n_vhosts = i + 1;
    }
    return 0;
}

static void route_entry_free(route_entry *r)
{
    if (r->match == MATCH_REGEX && r->pattern)
        regfree(&r->regex);
    free(r->pattern);
    free(r->cluster);
    for (size_t i = 0; i < r->n_targets; i++)
        free(r->targets[i].name);
    free(r->targets);
    free(r->retriable_status);
}

void route_table_free(route_table *rt)
{
    for (size_t i = 0; i < rt->n_vhosts; i++) {
        virtual_host *vh = &rt->vhosts[i];
        for (size_t j = 0; j < vh->n_domains; j++)
            free(vh->domains[j].text);
        for (size_t j = 0; j < vh->n_routes; j++)
            route_entry_free(&vh->routes[j]);
        free(vh->domains);
        free(vh->routes);
        free(vh->name);
    }
    free(rt->vhosts);
    memset(rt, 0, sizeof(*rt));
}

/* Match score: exact 3, suffix 2, prefix 1, any 0; longer wins inside a kind. */
static int domain_matches(const domain_pattern *d, const char *h, size_t n)
{
    switch (d->kind) {
    case DOMAIN_EXACT:
        return d->len == n && strncasecmp(d->text, h, n) == 0;
    case DOMAIN_SUFFIX:
        return n > d->len && strncasecmp(h + n - d->len, d->text, d->len) == 0;
    case DOMAIN_PREFIX:
        return n > d->len && strncasecmp(h, d->text, d->len) == 0;
    default:
        return 1;
    }
}

static const virtual_host *find_vhost(const route_table *rt, const char *host, size_t n)
{
    const virtual_host *best = NULL;
    int best_kind = -1;
    size_t best_len = 0;
    static const int rank[] = {[DOMAIN_EXACT] = 3, [DOMAIN_SUFFIX] = 2, [DOMAIN_PREFIX] = 1,
                               [DOMAIN_ANY] = 0};
    for (size_t i = 0; i < rt->n_vhosts; i++) {
        for (size_t j = 0; j < rt->vhosts[i].n_domains; j++) {
            const domain_pattern *d = &rt->vhosts[i].domains[j];
            if (!domain_matches(d, host, n))
                continue;
            int k = rank[d->kind];
            if (k > best_kind || (k == best_kind && d->len > best_len)) {
                best = &rt->vhosts[i];
                best_kind = k;
                best_len = d->len;
            }
        }
    }
    return best;
}

/* Length of host without a trailing ":port" (IPv6 literals in brackets). */
static size_t host_without_port(const char *host, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        if (host[i - 1] == ']')
            return n;
        if (host[i - 1] == ':')
            return i - 1;
        if (!isdigit((unsigned char)host[i - 1]))
            return n;
    }
    return n;
}

const virtual_host *router_find_vhost(const route_table *rt, const char *host, size_t host_len)
{
    if (rt->ignore_port)
        host_len = host_without_port(host, host_len);
    return find_vhost(rt, host, host_len);
}

static int regex_matches(const route_entry *r, const char *path, size_t n)
{
    char small[2048];
    char *s = n < sizeof(small) ? small : malloc(n + 1);
    if (s == NULL)
        return 0;
    memcpy(s, path, n);
    s[n] = '\0';
    int ok = regexec(&r->regex, s, 0, NULL, 0) == 0;
    if (s != small)
        free(s);
    return ok;
}

const route_entry *router_find_route(const virtual_host *vh, const char *path, size_t path_len)
{
    for (size_t i = 0; vh && i < vh->n_routes; i++) {
        const route_entry *r = &vh->routes[i];
        int (*cmp)(const char *, const char *, size_t) = r->case_sensitive ? strncmp : strncasecmp;
        switch (r->match) {
        case MATCH_PREFIX:
            if (path_len >= r->pattern_len && cmp(path, r->pattern, r->pattern_len) == 0)
                return r;
            break;
        case MATCH_PATH:
            if (path_len == r->pattern_len && cmp(path, r->pattern, r->pattern_len) == 0)
                return r;
            break;
        case MATCH_REGEX:
            if (regex_matches(r, path, path_len))
                return r;
            break;
        }
    }
    return NULL;
}

int router_egress_cluster(const char *host, size_t host_len, unsigned default_port, char *out,
                          size_t outlen)
{
    size_t name_len = host_without_port(host, host_len);
    if (name_len == 0)
        return -1;
    unsigned port = default_port;
    if (name_len < host_len)
        port = (unsigned)strtoul(host + name_len + 1, NULL, 10);
    char lower[256];
    size_t n = name_len < sizeof(lower) - 1 ? name_len : sizeof(lower) - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)host[i]);
    lower[n] = '\0';
    int w = snprintf(out, outlen, "outbound|%u||%s", port, lower);
    return w < 0 ? -1 : (w >= (int)outlen ? (int)outlen - 1 : w);
}

const char *router_pick_weighted(const route_entry *r, uint64_t random)
{
    uint64_t pos = random % r->total_weight;
    for (size_t i = 0; i < r->n_targets; i++) {
        if (pos < r->targets[i].weight)
            return r->targets[i].name;
        pos -= r->targets[i].weight;
    }
    return r->targets[r->n_targets - 1].name;
}
