/* dns.c: STRICT_DNS / LOGICAL_DNS endpoint resolution (see dns.h). */
#include "xdsnode/dns.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/log.h"
#include "xdsnode/pbmerge.h"

#define DNS_MAX_ADDRS_PER_HOST 64

/* One hostname to resolve and what it resolved to. */
typedef struct {
    char *host;
    char addrs[DNS_MAX_ADDRS_PER_HOST][INET6_ADDRSTRLEN];
    size_t n_addrs;
    int gai_error;
} dns_host;

typedef struct dns_job {
    struct dns_job *next;
    char *cluster;
    uint64_t generation;
    int family; /* AF_UNSPEC, AF_INET or AF_INET6 */
    int prefer_v6;
    dns_host *hosts;
    size_t n_hosts;
} dns_job;

typedef struct {
    char *cluster;
    pb_cla *configured; /* the cluster's load_assignment (hostnames) */
    int logical;
    int family, prefer_v6;
    double refresh_s;
    uint64_t generation;
    ev_timer refresh;
    struct dns_resolver *owner;
} dns_watch;

struct dns_resolver {
    struct ev_loop *loop;
    cluster_manager *cm;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;           /* guarded by lock */
    dns_job *jobs, *jobs_tail; /* to the thread; guarded by lock */
    dns_job *done;          /* from the thread; guarded by lock */
    ev_async wake;
    dns_watch **watches;
    size_t n_watches;
    uint64_t next_generation;
};

int dns_cluster_is_dns(const pb_cluster *c)
{
    return c->cluster_discovery_type_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE &&
           (c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS ||
            c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS);
}

/* --- jobs ----------------------------------------------------------------- */

static void job_free(dns_job *j)
{
    for (size_t i = 0; i < j->n_hosts; i++)
        free(j->hosts[i].host);
    free(j->hosts);
    free(j->cluster);
    free(j);
}

static void resolve_host(dns_host *h, int family)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    h->gai_error = getaddrinfo(h->host, NULL, &hints, &res);
    for (struct addrinfo *ai = res; ai && h->n_addrs < DNS_MAX_ADDRS_PER_HOST; ai = ai->ai_next) {
        const void *src = ai->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(ai->ai_family, src, text, sizeof(text)) == NULL)
            continue;
        int dup = 0;
        for (size_t k = 0; k < h->n_addrs && !dup; k++)
            dup = strcmp(h->addrs[k], text) == 0;
        if (!dup)
            snprintf(h->addrs[h->n_addrs++], INET6_ADDRSTRLEN, "%s", text);
    }
    if (res)
        freeaddrinfo(res);
}

static void *resolver_thread(void *arg)
{
    struct dns_resolver *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (r->jobs == NULL && !r->stopping)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stopping)
            break;
        dns_job *j = r->jobs;
        r->jobs = j->next;
        if (r->jobs == NULL)
            r->jobs_tail = NULL;
        pthread_mutex_unlock(&r->lock);
        for (size_t i = 0; i < j->n_hosts; i++)
            resolve_host(&j->hosts[i], j->family);
        pthread_mutex_lock(&r->lock);
        j->next = r->done;
        r->done = j;
        ev_async_send(r->loop, &r->wake);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* --- watches ------------------------------------------------------------------ */

static dns_watch *find_watch(struct dns_resolver *r, const char *cluster, size_t *index)
{
    for (size_t i = 0; i < r->n_watches; i++) {
        if (strcmp(r->watches[i]->cluster, cluster) == 0) {
            if (index)
                *index = i;
            return r->watches[i];
        }
    }
    return NULL;
}

static const char *endpoint_host(const Envoy__Config__Endpoint__V3__LbEndpoint *lb, uint32_t *port)
{
    if (lb->host_identifier_case != ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
        lb->endpoint->address == NULL ||
        lb->endpoint->address->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
        return NULL;
    *port = lb->endpoint->address->socket_address->port_value;
    return lb->endpoint->address->socket_address->address;
}

static void submit(struct dns_resolver *r, dns_watch *w)
{
    dns_job *j = calloc(1, sizeof(*j));
    size_t total = 0;
    for (size_t i = 0; i < w->configured->n_endpoints; i++)
        total += w->configured->endpoints[i]->n_lb_endpoints;
    if (j == NULL || (j->hosts = calloc(total ? total : 1, sizeof(dns_host))) == NULL) {
        free(j);
        log_error("dns: out of memory resolving '%s'", w->cluster);
        return;
    }
    for (size_t i = 0; i < w->configured->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = w->configured->endpoints[i];
        for (size_t k = 0; k < loc->n_lb_endpoints; k++) {
            uint32_t port;
            const char *host = endpoint_host(loc->lb_endpoints[k], &port);
            j->hosts[j->n_hosts++].host = strdup(host ? host : "");
        }
    }
    j->cluster = strdup(w->cluster);
    j->generation = w->generation;
    j->family = w->family;
    j->prefer_v6 = w->prefer_v6;
    pthread_mutex_lock(&r->lock);
    if (r->jobs_tail)
        r->jobs_tail->next = j;
    else
        r->jobs = j;
    r->jobs_tail = j;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void on_refresh(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    dns_watch *w = t->data;
    submit(w->owner, w);
}

static void watch_free(struct dns_resolver *r, dns_watch *w)
{
    ev_timer_stop(r->loop, &w->refresh);
    if (w->configured)
        protobuf_c_message_free_unpacked(&w->configured->base, NULL);
    free(w->cluster);
    free(w);
}

/* Order of the addresses of one host: Envoy's AUTO prefers IPv6. */
static int address_wanted(const dns_job *j, const char *addr, int pass)
{
    int v6 = strchr(addr, ':') != NULL;
    if (j->family != AF_UNSPEC)
        return pass == 0;
    return j->prefer_v6 ? (pass == 0) == v6 : (pass == 0) != v6;
}

/* One resolved LbEndpoint: the configured one with an IP address. */
static Envoy__Config__Endpoint__V3__LbEndpoint *resolved_endpoint(
    const Envoy__Config__Endpoint__V3__LbEndpoint *lb, const char *host, const char *addr)
{
    Envoy__Config__Endpoint__V3__LbEndpoint *copy =
        (Envoy__Config__Endpoint__V3__LbEndpoint *)pb_clone(&lb->base);
    if (copy == NULL)
        return NULL;
    Envoy__Config__Core__V3__SocketAddress *sa = copy->endpoint->address->socket_address;
    free(sa->address);
    sa->address = strdup(addr);
    if (copy->endpoint->hostname == NULL || copy->endpoint->hostname[0] == '\0') {
        if (copy->endpoint->hostname != protobuf_c_empty_string)
            free(copy->endpoint->hostname);
        copy->endpoint->hostname = strdup(host);
    }
    return copy;
}

/* Replaces each locality's endpoints by their resolved addresses. */
static pb_cla *build_assignment(const dns_watch *w, const dns_job *j, const char *cluster)
{
    pb_cla *cla = (pb_cla *)pb_clone(&w->configured->base);
    if (cla == NULL)
        return NULL;
    size_t h = 0, taken = 0;
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = cla->endpoints[i];
        size_t cap = 0, n = 0;
        for (size_t k = 0; k < loc->n_lb_endpoints; k++)
            cap += j->hosts[h + k].n_addrs;
        Envoy__Config__Endpoint__V3__LbEndpoint **out = calloc(cap ? cap : 1, sizeof(*out));
        for (size_t k = 0; out && k < loc->n_lb_endpoints; k++, h++) {
            const dns_host *dh = &j->hosts[h];
            if (dh->n_addrs == 0)
                log_warn("dns: cluster '%s': cannot resolve '%s': %s", cluster, dh->host,
                         dh->gai_error ? gai_strerror(dh->gai_error) : "no address");
            for (int pass = 0; pass < 2; pass++) {
                for (size_t a = 0; a < dh->n_addrs; a++) {
                    if (!address_wanted(j, dh->addrs[a], pass) || (w->logical && taken > 0))
                        continue;
                    out[n] = resolved_endpoint(loc->lb_endpoints[k], dh->host, dh->addrs[a]);
                    if (out[n]) {
                        n++;
                        taken++;
                    }
                }
            }
        }
        for (size_t k = 0; k < loc->n_lb_endpoints; k++)
            protobuf_c_message_free_unpacked(&loc->lb_endpoints[k]->base, NULL);
        free(loc->lb_endpoints);
        loc->lb_endpoints = out;
        loc->n_lb_endpoints = out ? n : 0;
    }
    if (cla->cluster_name != protobuf_c_empty_string)
        free(cla->cluster_name);
    cla->cluster_name = strdup(cluster);
    return cla;
}

static void apply_result(struct dns_resolver *r, dns_job *j)
{
    dns_watch *w = find_watch(r, j->cluster, NULL);
    if (w == NULL || w->generation != j->generation)
        return; /* removed or reconfigured meanwhile */
    pb_cla *cla = build_assignment(w, j, j->cluster);
    if (cla != NULL) {
        size_t len = protobuf_c_message_get_packed_size(&cla->base);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf) {
            protobuf_c_message_pack(&cla->base, buf);
            cluster_manager_set_assignment(r->cm, j->cluster, buf, len);
            free(buf);
        }
        size_t hosts = 0;
        for (size_t i = 0; i < cla->n_endpoints; i++)
            hosts += cla->endpoints[i]->n_lb_endpoints;
        log_debug("dns: cluster '%s' resolved to %zu endpoint(s)", j->cluster, hosts);
        protobuf_c_message_free_unpacked(&cla->base, NULL);
    }
    ev_timer_set(&w->refresh, w->refresh_s, 0.);
    ev_timer_start(r->loop, &w->refresh);
}

static void on_results(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    struct dns_resolver *r = a->data;
    pthread_mutex_lock(&r->lock);
    dns_job *done = r->done;
    r->done = NULL;
    pthread_mutex_unlock(&r->lock);
    while (done) {
        dns_job *next = done->next;
        apply_result(r, done);
        job_free(done);
        done = next;
    }
}

/* --- public API ------------------------------------------------------------------ */

int dns_resolver_create(struct ev_loop *loop, cluster_manager *cm, dns_resolver **out, char *err,
                        size_t errlen)
{
    struct dns_resolver *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->loop = loop;
    r->cm = cm;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    ev_async_init(&r->wake, on_results);
    r->wake.data = r;
    ev_async_start(loop, &r->wake);
    if (pthread_create(&r->thread, NULL, resolver_thread, r) != 0) {
        snprintf(err, errlen, "cannot start the DNS resolver thread");
        dns_resolver_destroy(r);
        return -1;
    }
    r->thread_started = 1;
    *out = r;
    return 0;
}

void dns_resolver_destroy(dns_resolver *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    if (r->thread_started)
        pthread_join(r->thread, NULL);
    for (dns_job *j = r->jobs, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    for (dns_job *j = r->done, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    for (size_t i = 0; i < r->n_watches; i++)
        watch_free(r, r->watches[i]);
    free(r->watches);
    ev_async_stop(r->loop, &r->wake);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void family_of(const pb_cluster *c, int *family, int *prefer_v6)
{
    *prefer_v6 = 0;
    switch (c->dns_lookup_family) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY:
        *family = AF_INET;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V6_ONLY:
        *family = AF_INET6;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__AUTO:
        *family = AF_UNSPEC;
        *prefer_v6 = 1;
        break;
    default: /* V4_PREFERRED, ALL */
        *family = AF_UNSPEC;
        break;
    }
}

int dns_resolver_watch(dns_resolver *r, const pb_cluster *c)
{
    dns_resolver_unwatch(r, c->name);
    dns_watch *w = calloc(1, sizeof(*w));
    dns_watch **grown = realloc(r->watches, (r->n_watches + 1) * sizeof(*grown));
    if (w == NULL || grown == NULL) {
        free(w);
        return -1;
    }
    r->watches = grown;
    pb_cla empty;
    envoy__config__endpoint__v3__cluster_load_assignment__init(&empty);
    w->configured = (pb_cla *)pb_clone(c->load_assignment ? &c->load_assignment->base : &empty.base);
    w->cluster = strdup(c->name);
    if (w->configured == NULL || w->cluster == NULL) {
        watch_free(r, w);
        return -1;
    }
    w->owner = r;
    w->logical = c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS;
    family_of(c, &w->family, &w->prefer_v6);
    w->refresh_s = c->dns_refresh_rate
                       ? (double)c->dns_refresh_rate->seconds + c->dns_refresh_rate->nanos / 1e9
                       : DNS_DEFAULT_REFRESH_S;
    if (w->refresh_s <= 0)
        w->refresh_s = DNS_DEFAULT_REFRESH_S;
    w->generation = ++r->next_generation;
    ev_timer_init(&w->refresh, on_refresh, w->refresh_s, 0.);
    w->refresh.data = w;
    r->watches[r->n_watches++] = w;
    submit(r, w);
    return 0;
}

void dns_resolver_unwatch(dns_resolver *r, const char *cluster)
{
    size_t i;
    dns_watch *w = find_watch(r, cluster, &i);
    if (w == NULL)
        return;
    watch_free(r, w);
    r->watches[i] = r->watches[--r->n_watches];
}
