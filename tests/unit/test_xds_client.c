/* Unit tests: the xDS client's state machines (SotW and Delta): what it
 * applies to the cluster manager and which ACK/NACK/subscription requests
 * it sends, fed with real Discovery(Delta)Response messages. The gRPC
 * stream itself is covered end to end (tests/e2e/test_xds.sh). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../xds/client/xds_internal.h"
#include "xdsnode/cluster_stats.h"
#include "xdsnode/pbjson.h"

#define MAX_REQ 16

typedef struct {
    uint8_t *bytes[MAX_REQ];
    size_t len[MAX_REQ];
    int n;
} captured;

static void capture(void *ctx, const ProtobufCMessage *m)
{
    captured *cap = ctx;
    cr_assert_lt(cap->n, MAX_REQ);
    size_t len = protobuf_c_message_get_packed_size(m);
    cap->bytes[cap->n] = malloc(len + 1);
    protobuf_c_message_pack(m, cap->bytes[cap->n]);
    cap->len[cap->n++] = len;
}

static Envoy__Service__Discovery__V3__DiscoveryRequest *sotw_req(captured *cap, int i)
{
    cr_assert_lt(i, cap->n, "only %d requests", cap->n);
    return envoy__service__discovery__v3__discovery_request__unpack(NULL, cap->len[i], cap->bytes[i]);
}

static Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *delta_req(captured *cap, int i)
{
    cr_assert_lt(i, cap->n, "only %d requests", cap->n);
    return envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, cap->len[i], cap->bytes[i]);
}

static void reset(captured *cap)
{
    for (int i = 0; i < cap->n; i++)
        free(cap->bytes[i]);
    cap->n = 0;
}

typedef struct {
    struct ev_loop *loop;
    stats_store *store;
    cluster_manager *cm;
    struct xds_client *c;
    captured cap;
} fixture;

static void setup_fixture(fixture *f, int delta)
{
    memset(f, 0, sizeof(*f));
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->store = stats_store_create();
    f->cm = cluster_manager_create(f->store);
    f->c = xds_client_create_detached(f->loop, delta, f->cm, f->store, capture, &f->cap);
    cr_assert_not_null(f->c);
}

static void teardown_fixture(fixture *f)
{
    xds_client_destroy(f->c);
    cluster_manager_destroy(f->cm);
    stats_store_destroy(f->store);
    ev_loop_destroy(f->loop);
    reset(&f->cap);
}

/* An Any holding the message decoded from JSON. */
static Google__Protobuf__Any *any_from_json(const ProtobufCMessageDescriptor *d, const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    cr_assert_not_null(j, "bad test JSON: %s", json);
    ProtobufCMessage *m = NULL;
    char err[512];
    cr_assert_eq(pbjson_decode(d, j, "", &m, err, sizeof(err)), 0, "%s", err);
    json_decref(j);
    Google__Protobuf__Any *any = malloc(sizeof(*any));
    google__protobuf__any__init(any);
    cr_assert_eq(pbjson_any_pack(&any->base, m), 0);
    protobuf_c_message_free_unpacked(m, NULL);
    return any;
}

#define EDS_CLUSTER(name, timeout)                                                         \
    "{\"name\":\"" name "\",\"type\":\"EDS\",\"eds_cluster_config\":{\"eds_config\":{\"ads\":{}," \
    "\"initial_fetch_timeout\":\"" timeout "\"}}}"
#define STATIC_CLUSTER(name) "{\"name\":\"" name "\",\"connect_timeout\":\"1s\"}"
#define CLA(name, ip) \
    "{\"cluster_name\":\"" name "\",\"endpoints\":[{\"lb_endpoints\":[{\"endpoint\":{\"address\":" \
    "{\"socket_address\":{\"address\":\"" ip "\",\"port_value\":80}}}}]}]}"

typedef struct {
    Envoy__Service__Discovery__V3__DiscoveryResponse r;
    Google__Protobuf__Any *anys[8];
} sotw_resp;

static void sotw_build(sotw_resp *s, const char *type_url, const char *version, const char *nonce,
                       const ProtobufCMessageDescriptor *d, const char **json, size_t n)
{
    envoy__service__discovery__v3__discovery_response__init(&s->r);
    for (size_t i = 0; i < n; i++)
        s->anys[i] = any_from_json(d, json[i]);
    s->r.type_url = (char *)type_url;
    s->r.version_info = (char *)version;
    s->r.nonce = (char *)nonce;
    s->r.n_resources = n;
    s->r.resources = s->anys;
}

static void sotw_free(sotw_resp *s)
{
    for (size_t i = 0; i < s->r.n_resources; i++) {
        free(s->anys[i]->type_url);
        free(s->anys[i]->value.data);
        free(s->anys[i]);
    }
}

static void feed_cds(fixture *f, const char *version, const char *nonce, const char **json, size_t n)
{
    sotw_resp s;
    sotw_build(&s, XDS_CDS_TYPE_URL, version, nonce, PB_CLUSTER_DESC, json, n);
    cds_on_sotw(f->c, &s.r);
    sotw_free(&s);
}

static void feed_eds(fixture *f, const char *version, const char *nonce, const char **json, size_t n)
{
    sotw_resp s;
    sotw_build(&s, XDS_EDS_TYPE_URL, version, nonce, PB_CLA_DESC, json, n);
    eds_on_sotw(f->c, &s.r);
    sotw_free(&s);
}

Test(xds_sotw, cds_accepted_eds_subscribed_then_acked)
{
    fixture f;
    setup_fixture(&f, 0);
    const char *clusters[] = {EDS_CLUSTER("a", "0s"), STATIC_CLUSTER("b")};
    feed_cds(&f, "v1", "n1", clusters, 2);

    cr_assert_eq(cluster_manager_count(f.cm), 2);
    cr_assert_eq(cluster_manager_find(f.cm, "a")->state, CM_CLUSTER_WARMING);
    cr_assert_eq(cluster_manager_find(f.cm, "b")->state, CM_CLUSTER_ACTIVE);
    cr_assert_str_eq(cluster_manager_find(f.cm, "a")->version_info, "v1");
    cr_assert_eq(f.cap.n, 2, "EDS request then CDS ACK");
    Envoy__Service__Discovery__V3__DiscoveryRequest *eds = sotw_req(&f.cap, 0);
    cr_assert_str_eq(eds->type_url, XDS_EDS_TYPE_URL);
    cr_assert_eq(eds->n_resource_names, 1);
    cr_assert_str_eq(eds->resource_names[0], "a");
    cr_assert_not_null(eds->node, "the first request carries the node");
    cr_assert_str_eq(eds->node->user_agent_name, "xdsnode");
    Envoy__Service__Discovery__V3__DiscoveryRequest *ack = sotw_req(&f.cap, 1);
    cr_assert_str_eq(ack->type_url, XDS_CDS_TYPE_URL);
    cr_assert_str_eq(ack->version_info, "v1");
    cr_assert_str_eq(ack->response_nonce, "n1");
    cr_assert_null(ack->error_detail);
    cr_assert_null(ack->node, "set_node_on_first_message_only");
    cr_assert_str_eq(xds_client_cds_version(f.c), "v1");
    cr_assert_eq(stats_get(f.c->cds_stats, CDS_STAT_UPDATE_SUCCESS), 1);
    envoy__service__discovery__v3__discovery_request__free_unpacked(eds, NULL);
    envoy__service__discovery__v3__discovery_request__free_unpacked(ack, NULL);
    cr_assert_eq(xds_client_initialized(f.c), 0, "a cluster is still warming");

    reset(&f.cap);
    const char *clas[] = {CLA("a", "10.0.0.1")};
    feed_eds(&f, "e1", "n2", clas, 1);
    const cm_cluster *a = cluster_manager_find(f.cm, "a");
    cr_assert_eq(a->state, CM_CLUSTER_ACTIVE);
    cr_assert_not_null(a->assignment);
    cr_assert_eq(stats_get(a->stats, CLUSTER_STAT_UPDATE_SUCCESS), 1);
    Envoy__Service__Discovery__V3__DiscoveryRequest *eack = sotw_req(&f.cap, 0);
    cr_assert_str_eq(eack->version_info, "e1");
    cr_assert_str_eq(eack->response_nonce, "n2");
    cr_assert_eq(eack->n_resource_names, 1);
    envoy__service__discovery__v3__discovery_request__free_unpacked(eack, NULL);
    cr_assert_eq(xds_client_initialized(f.c), 1);
    teardown_fixture(&f);
}

Test(xds_sotw, bad_update_nacked_whole_and_old_config_kept)
{
    fixture f;
    setup_fixture(&f, 0);
    const char *v1[] = {STATIC_CLUSTER("a")};
    feed_cds(&f, "v1", "n1", v1, 1);
    reset(&f.cap);
    const char *v2[] = {STATIC_CLUSTER("b"), "{\"name\":\"\",\"connect_timeout\":\"1s\"}",
                        "{\"name\":\"c\",\"connect_timeout\":\"0s\"}"};
    feed_cds(&f, "v2", "n2", v2, 3);

    cr_assert_eq(cluster_manager_count(f.cm), 1, "nothing of v2 applied");
    cr_assert_not_null(cluster_manager_find(f.cm, "a"));
    cr_assert_eq(f.cap.n, 1);
    Envoy__Service__Discovery__V3__DiscoveryRequest *nack = sotw_req(&f.cap, 0);
    cr_assert_str_eq(nack->version_info, "v1", "a NACK carries the last accepted version");
    cr_assert_str_eq(nack->response_nonce, "n2");
    cr_assert_not_null(nack->error_detail);
    cr_assert_eq(nack->error_detail->code, 3);
    cr_assert_str_eq(nack->error_detail->message,
                     "Error adding/updating cluster(s) <unnamed>: name: must not be empty; "
                     "c: connect_timeout: must be greater than 0s");
    envoy__service__discovery__v3__discovery_request__free_unpacked(nack, NULL);
    const xds_failure *fail = xds_client_cds_failure(f.c);
    cr_assert(fail->present);
    cr_assert_str_eq(fail->version_info, "v2");
    cr_assert_eq(fail->n_resources, 2);
    cr_assert_str_eq(fail->resources[1].name, "c");
    cr_assert_eq(stats_get(f.c->cds_stats, CDS_STAT_UPDATE_REJECTED), 1);
    cr_assert_str_eq(xds_client_cds_version(f.c), "v1");

    reset(&f.cap);
    feed_cds(&f, "v3", "n3", v2, 1);
    cr_assert_eq(xds_client_cds_failure(f.c)->present, 0, "cleared by an accepted update");
    cr_assert_not_null(cluster_manager_find(f.cm, "b"));
    cr_assert_null(cluster_manager_find(f.cm, "a"), "SotW: absent means removed");
    teardown_fixture(&f);
}

Test(xds_sotw, duplicates_and_static_names_rejected)
{
    fixture f;
    setup_fixture(&f, 0);
    pb_cluster st;
    envoy__config__cluster__v3__cluster__init(&st);
    st.name = "xds-grpc";
    char err[256];
    cr_assert_eq(cluster_manager_add_static(f.cm, &st, err, sizeof(err)), 0);
    const char *bad[] = {STATIC_CLUSTER("x"), STATIC_CLUSTER("x"), STATIC_CLUSTER("xds-grpc")};
    feed_cds(&f, "v1", "n1", bad, 3);
    Envoy__Service__Discovery__V3__DiscoveryRequest *nack = sotw_req(&f.cap, 0);
    cr_assert_str_eq(nack->error_detail->message,
                     "Error adding/updating cluster(s) xds-grpc: cannot update static cluster "
                     "'xds-grpc'; x: duplicate cluster 'x' in one update");
    envoy__service__discovery__v3__discovery_request__free_unpacked(nack, NULL);
    cr_assert_eq(cluster_manager_count(f.cm), 1);
    teardown_fixture(&f);
}

Test(xds_sotw, removing_a_cluster_unsubscribes_its_eds)
{
    fixture f;
    setup_fixture(&f, 0);
    const char *v1[] = {EDS_CLUSTER("a", "0s"), EDS_CLUSTER("b", "0s")};
    feed_cds(&f, "v1", "n1", v1, 2);
    reset(&f.cap);
    const char *v2[] = {EDS_CLUSTER("b", "0s")};
    feed_cds(&f, "v2", "n2", v2, 1);
    cr_assert_null(cluster_manager_find(f.cm, "a"));
    Envoy__Service__Discovery__V3__DiscoveryRequest *eds = sotw_req(&f.cap, 0);
    cr_assert_str_eq(eds->type_url, XDS_EDS_TYPE_URL);
    cr_assert_eq(eds->n_resource_names, 1);
    cr_assert_str_eq(eds->resource_names[0], "b");
    envoy__service__discovery__v3__discovery_request__free_unpacked(eds, NULL);
    teardown_fixture(&f);
}

Test(xds_sotw, bad_endpoint_nacked)
{
    fixture f;
    setup_fixture(&f, 0);
    const char *v1[] = {EDS_CLUSTER("a", "0s")};
    feed_cds(&f, "v1", "n1", v1, 1);
    reset(&f.cap);
    const char *clas[] = {CLA("a", "not-an-ip")};
    feed_eds(&f, "e1", "n2", clas, 1);
    Envoy__Service__Discovery__V3__DiscoveryRequest *nack = sotw_req(&f.cap, 0);
    cr_assert_not_null(nack->error_detail);
    cr_assert_str_eq(nack->error_detail->message,
                     "Error applying ClusterLoadAssignment(s) a: endpoints[0].lb_endpoints[0]."
                     "endpoint.address.socket_address.address: malformed IP address: not-an-ip");
    cr_assert_str_eq(nack->version_info, "");
    envoy__service__discovery__v3__discovery_request__free_unpacked(nack, NULL);
    cr_assert_eq(cluster_manager_find(f.cm, "a")->state, CM_CLUSTER_WARMING);
    cr_assert_eq(stats_get(cluster_manager_find(f.cm, "a")->stats, CLUSTER_STAT_UPDATE_REJECTED), 1);
    teardown_fixture(&f);
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

Test(xds_sotw, initial_fetch_timeout_activates_without_endpoints)
{
    fixture f;
    setup_fixture(&f, 0);
    const char *v1[] = {EDS_CLUSTER("slow", "0.05s"), EDS_CLUSTER("patient", "0s")};
    feed_cds(&f, "v1", "n1", v1, 2);
    ev_timer stop;
    ev_timer_init(&stop, stop_loop, 0.3, 0.);
    ev_timer_start(f.loop, &stop);
    ev_run(f.loop, 0);
    const cm_cluster *slow = cluster_manager_find(f.cm, "slow");
    cr_assert_eq(slow->state, CM_CLUSTER_ACTIVE);
    cr_assert_null(slow->assignment);
    cr_assert_eq(stats_get(slow->stats, CLUSTER_STAT_INIT_FETCH_TIMEOUT), 1);
    cr_assert_eq(cluster_manager_find(f.cm, "patient")->state, CM_CLUSTER_WARMING,
                 "0s waits forever");
    teardown_fixture(&f);
}

Test(xds_sotw, updated_cluster_with_known_endpoints_does_not_warm)
{
    fixture f;
    setup_fixture(&f, 0);
    const char *v1[] = {EDS_CLUSTER("a", "0s")};
    feed_cds(&f, "v1", "n1", v1, 1);
    const char *clas[] = {CLA("a", "10.0.0.1")};
    feed_eds(&f, "e1", "n2", clas, 1);
    const char *v2[] = {"{\"name\":\"a\",\"type\":\"EDS\",\"connect_timeout\":\"3s\","
                        "\"eds_cluster_config\":{\"eds_config\":{\"ads\":{}}}}"};
    feed_cds(&f, "v2", "n3", v2, 1);
    const cm_cluster *a = cluster_manager_find(f.cm, "a");
    cr_assert_eq(a->state, CM_CLUSTER_ACTIVE);
    cr_assert_null(a->warming_config);
    cr_assert_str_eq(a->version_info, "v2");
    cr_assert_not_null(a->assignment);
    teardown_fixture(&f);
}

/* --- Delta ------------------------------------------------------------------- */

typedef struct {
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse r;
    Envoy__Service__Discovery__V3__Resource res[8], *ptrs[8];
} delta_resp;

static void delta_build(delta_resp *d, const char *type_url, const char *nonce,
                        const ProtobufCMessageDescriptor *desc, const char **names,
                        const char **versions, const char **json, size_t n, char **removed,
                        size_t n_removed)
{
    envoy__service__discovery__v3__delta_discovery_response__init(&d->r);
    for (size_t i = 0; i < n; i++) {
        envoy__service__discovery__v3__resource__init(&d->res[i]);
        d->res[i].name = (char *)names[i];
        d->res[i].version = (char *)versions[i];
        d->res[i].resource = any_from_json(desc, json[i]);
        d->ptrs[i] = &d->res[i];
    }
    d->r.type_url = (char *)type_url;
    d->r.nonce = (char *)nonce;
    d->r.system_version_info = (char *)"sys";
    d->r.n_resources = n;
    d->r.resources = d->ptrs;
    d->r.n_removed_resources = n_removed;
    d->r.removed_resources = removed;
}

static void delta_free(delta_resp *d)
{
    for (size_t i = 0; i < d->r.n_resources; i++) {
        free(d->res[i].resource->type_url);
        free(d->res[i].resource->value.data);
        free(d->res[i].resource);
    }
}

Test(xds_delta, add_remove_and_versions)
{
    fixture f;
    setup_fixture(&f, 1);
    const char *names[] = {"a", "b"}, *versions[] = {"1", "7"};
    const char *json[] = {EDS_CLUSTER("a", "0s"), STATIC_CLUSTER("b")};
    delta_resp d;
    delta_build(&d, XDS_CDS_TYPE_URL, "n1", PB_CLUSTER_DESC, names, versions, json, 2, NULL, 0);
    cds_on_delta(f.c, &d.r);
    delta_free(&d);
    cr_assert_eq(cluster_manager_count(f.cm), 2);
    cr_assert_str_eq(cluster_manager_find(f.cm, "b")->version_info, "7");
    cr_assert_str_eq(cluster_manager_find(f.cm, "a")->version_info, "1");
    cr_assert_eq(f.cap.n, 2);
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *sub = delta_req(&f.cap, 0);
    cr_assert_str_eq(sub->type_url, XDS_EDS_TYPE_URL);
    cr_assert_eq(sub->n_resource_names_subscribe, 1);
    cr_assert_str_eq(sub->resource_names_subscribe[0], "a");
    cr_assert_str_eq(sub->response_nonce, "", "subscription changes carry no nonce");
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *ack = delta_req(&f.cap, 1);
    cr_assert_str_eq(ack->response_nonce, "n1");
    cr_assert_eq(ack->n_resource_names_subscribe, 0, "an ACK does not change subscriptions");
    cr_assert_null(ack->error_detail);
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(sub, NULL);
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(ack, NULL);

    reset(&f.cap);
    char *removed[] = {"a"};
    delta_build(&d, XDS_CDS_TYPE_URL, "n2", PB_CLUSTER_DESC, NULL, NULL, NULL, 0, removed, 1);
    cds_on_delta(f.c, &d.r);
    cr_assert_null(cluster_manager_find(f.cm, "a"));
    cr_assert_not_null(cluster_manager_find(f.cm, "b"), "Delta: absent is not removed");
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *unsub = delta_req(&f.cap, 0);
    cr_assert_eq(unsub->n_resource_names_unsubscribe, 1);
    cr_assert_str_eq(unsub->resource_names_unsubscribe[0], "a");
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(unsub, NULL);
    teardown_fixture(&f);
}

Test(xds_delta, nack_keeps_state_and_eds_removal_empties_endpoints)
{
    fixture f;
    setup_fixture(&f, 1);
    const char *names[] = {"a"}, *versions[] = {"1"};
    const char *json[] = {EDS_CLUSTER("a", "0s")};
    delta_resp d;
    delta_build(&d, XDS_CDS_TYPE_URL, "n1", PB_CLUSTER_DESC, names, versions, json, 1, NULL, 0);
    cds_on_delta(f.c, &d.r);
    delta_free(&d);
    const char *cla_json[] = {CLA("a", "10.0.0.2")};
    delta_build(&d, XDS_EDS_TYPE_URL, "n2", PB_CLA_DESC, names, versions, cla_json, 1, NULL, 0);
    eds_on_delta(f.c, &d.r);
    delta_free(&d);
    cr_assert_eq(cluster_manager_find(f.cm, "a")->state, CM_CLUSTER_ACTIVE);

    reset(&f.cap);
    const char *bad[] = {"{\"name\":\"a\",\"type\":\"EDS\"}"};
    const char *v2[] = {"2"};
    delta_build(&d, XDS_CDS_TYPE_URL, "n3", PB_CLUSTER_DESC, names, v2, bad, 1, NULL, 0);
    cds_on_delta(f.c, &d.r);
    delta_free(&d);
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *nack = delta_req(&f.cap, 0);
    cr_assert_str_eq(nack->response_nonce, "n3");
    cr_assert_not_null(nack->error_detail);
    cr_assert_str_eq(nack->error_detail->message,
                     "Error adding/updating cluster(s) a: eds_cluster_config: cannot create an EDS "
                     "cluster without an EDS config");
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(nack, NULL);
    cr_assert_str_eq(cluster_manager_find(f.cm, "a")->version_info, "1", "the NACKed version is not held");

    char *removed[] = {"a"};
    delta_build(&d, XDS_EDS_TYPE_URL, "n4", PB_CLA_DESC, NULL, NULL, NULL, 0, removed, 1);
    eds_on_delta(f.c, &d.r);
    const cm_cluster *a = cluster_manager_find(f.cm, "a");
    pb_cla *cla = (pb_cla *)protobuf_c_message_unpack(PB_CLA_DESC, NULL, a->assignment_len, a->assignment);
    cr_assert_eq(cla->n_endpoints, 0, "a removed assignment leaves the cluster with no endpoints");
    protobuf_c_message_free_unpacked(&cla->base, NULL);
    teardown_fixture(&f);
}
