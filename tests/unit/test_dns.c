/* Unit tests: STRICT_DNS / LOGICAL_DNS resolution into cluster assignments
 * (real getaddrinfo on the resolver thread, results on a libev loop). */
#include <criterion/criterion.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/dns.h"
#include "xdsnode/pbjson.h"

static pb_cluster *cluster_from_json(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    cr_assert_not_null(j);
    ProtobufCMessage *m = NULL;
    char err[256];
    cr_assert_eq(pbjson_decode(PB_CLUSTER_DESC, j, "", &m, err, sizeof(err)), 0, "%s", err);
    json_decref(j);
    return (pb_cluster *)m;
}

static void on_change(void *ctx, const cluster_manager *cm)
{
    const cm_cluster *c = cluster_manager_find(cm, ctx);
    if (c && c->assignment)
        ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Resolves one cluster and returns its assignment's addresses, joined. */
static void resolve(const char *json, const char *name, char *out, size_t outlen)
{
    struct ev_loop *loop = EV_DEFAULT;
    stats_store *st = stats_store_create();
    cluster_manager *cm = cluster_manager_create(st);
    dns_resolver *r = NULL;
    char err[256];
    cr_assert_eq(dns_resolver_create(loop, cm, &r, err, sizeof(err)), 0, "%s", err);
    pb_cluster *c = cluster_from_json(json);
    cr_assert_eq(cluster_manager_add_static(cm, c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cluster_manager_find(cm, name)->state, CM_CLUSTER_WARMING);
    cluster_manager_set_change_listener(cm, on_change, (void *)name);
    cr_assert_eq(dns_resolver_watch(r, c), 0);
    ev_timer deadline;
    ev_timer_init(&deadline, on_deadline, 30., 0.);
    ev_timer_start(loop, &deadline);
    ev_run(loop, 0);
    ev_timer_stop(loop, &deadline);
    const cm_cluster *e = cluster_manager_find(cm, name);
    cr_assert_not_null(e->assignment, "no resolution within 30 s");
    cr_assert_eq(e->state, CM_CLUSTER_ACTIVE, "the first resolution ends warming");
    pb_cla *cla = (pb_cla *)protobuf_c_message_unpack(PB_CLA_DESC, NULL, e->assignment_len, e->assignment);
    out[0] = '\0';
    for (size_t i = 0; i < cla->n_endpoints; i++) {
        for (size_t k = 0; k < cla->endpoints[i]->n_lb_endpoints; k++) {
            const Envoy__Config__Endpoint__V3__Endpoint *ep = cla->endpoints[i]->lb_endpoints[k]->endpoint;
            size_t used = strlen(out);
            snprintf(out + used, outlen - used, "%s%s:%u(%s)", used ? "," : "",
                     ep->address->socket_address->address, ep->address->socket_address->port_value,
                     ep->hostname);
        }
    }
    protobuf_c_message_free_unpacked(&cla->base, NULL);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    dns_resolver_destroy(r);
    cluster_manager_destroy(cm);
    stats_store_destroy(st);
}

#define DNS_CLUSTER(type, family, hosts)                                                     \
    "{\"name\":\"d\",\"type\":\"" type "\",\"dns_lookup_family\":\"" family "\","              \
    "\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":[" hosts "]}]}}"
#define HOST(h, p) "{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"" h "\",\"port_value\":" #p "}}}}"

Test(dns, strict_dns_resolves_every_host)
{
    char got[512];
    resolve(DNS_CLUSTER("STRICT_DNS", "V4_ONLY", HOST("localhost", 8080) "," HOST("127.0.0.2", 81)), "d",
            got, sizeof(got));
    cr_assert_str_eq(got, "127.0.0.1:8080(localhost),127.0.0.2:81(127.0.0.2)");
}

Test(dns, logical_dns_takes_one_address)
{
    char got[512];
    resolve(DNS_CLUSTER("LOGICAL_DNS", "V4_ONLY", HOST("127.0.0.3", 90) "," HOST("localhost", 91)), "d",
            got, sizeof(got));
    cr_assert_str_eq(got, "127.0.0.3:90(127.0.0.3)");
}

Test(dns, unresolvable_host_contributes_nothing)
{
    char got[512];
    resolve(DNS_CLUSTER("STRICT_DNS", "V4_ONLY", HOST("no-such-host.invalid", 80) "," HOST("127.0.0.4", 80)),
            "d", got, sizeof(got));
    cr_assert_str_eq(got, "127.0.0.4:80(127.0.0.4)");
}
