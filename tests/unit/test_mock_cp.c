/*
 * test_mock_cp.c: the mock control plane (build/xdsnode-cp, found through
 * $BUILD, default "build") as a child process, driven by a real gRPC core
 * client stream (pluck completion queue) over loopback: SotW and Delta ADS,
 * ACK/NACK/stale handling (a Delta NACK makes the next push resend what was
 * rejected), pushes on scenario change and SIGHUP, withheld endpoints
 * (warming), bad scenario files, and its JSON-lines log.
 *
 * No test leaves a control plane behind: each suite's .fini stops the one
 * still running after a failed assertion, and the child gets SIGTERM when
 * the test worker dies (PR_SET_PDEATHSIG).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "xdsnode/envoy_types.h"
#include "google/rpc/status.pb-c.h"

#define CDS CP_CDS_URL
#define CP_CDS_URL "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define EDS "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define SOTW_METHOD \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define DELTA_METHOD \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define START_TIMEOUT_MS 10000
#define REPLY_TIMEOUT_MS 5000
#define SILENCE_MS 600

typedef Envoy__Service__Discovery__V3__DiscoveryRequest pb_req;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse pb_resp;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest pb_dreq;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse pb_dresp;

/* ---- the control plane process ------------------------------------------ */

typedef struct {
    char dir[64];
    char scenario[128];
    char log[128];
    char port_file[128];
    char address[64];
    pid_t pid;
} cp_proc;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* Replaces the scenario atomically (new inode), as an editor would. */
static void put_scenario_text(cp_proc *p, const char *text)
{
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->scenario);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, p->scenario), 0);
}

static void put_scenario(cp_proc *p, const char *testdata_file)
{
    char *text = slurp(testdata_file);
    cr_assert_not_null(text, "cannot read %s", testdata_file);
    put_scenario_text(p, text);
    free(text);
}

/* The control plane this test started and has not stopped yet. */
static pid_t live_pid;
static char live_dir[64];

static void cp_spawn(cp_proc *p, char *const argv[])
{
    pid_t parent = getpid();
    p->pid = fork();
    cr_assert_neq(p->pid, -1);
    if (p->pid == 0) {
        /* a crash ends the test worker: take the CP with it */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    live_pid = p->pid;
    snprintf(live_dir, sizeof(live_dir), "%s", p->dir);
}

static const char *cp_binary(void)
{
    static char path[256];
    const char *build = getenv("BUILD");
    snprintf(path, sizeof(path), "%s/xdsnode-cp", build && build[0] ? build : "build");
    return path;
}

/* A fresh directory with the file names the CP will use. */
static void cp_prepare(cp_proc *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/test_mock_cp.XXXXXX");
    cr_assert_not_null(mkdtemp(p->dir));
    snprintf(p->scenario, sizeof(p->scenario), "%s/scenario.yaml", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/cp.log", p->dir);
    snprintf(p->port_file, sizeof(p->port_file), "%s/port", p->dir);
}

/* Starts the CP on port 0 (the scenario file, or --generate when
 * `generate` is set) and waits for its port file. */
static void cp_launch(cp_proc *p, const char *generate)
{
    char *argv[] = {(char *)cp_binary(), "--address", "127.0.0.1:0",
                    generate ? "--generate" : "--scenario",
                    generate ? (char *)generate : p->scenario,
                    "--log", p->log, "--port-file", p->port_file, NULL};
    cp_spawn(p, argv);
    double end = now_ms() + START_TIMEOUT_MS;
    while (now_ms() < end) {
        char *port = slurp(p->port_file);
        if (port != NULL && atoi(port) > 0) {
            snprintf(p->address, sizeof(p->address), "127.0.0.1:%d", atoi(port));
            free(port);
            return;
        }
        free(port);
        sleep_ms(20);
    }
    cr_assert_fail("xdsnode-cp (%s) did not write its port file", cp_binary());
}

/* Starts the CP with a copy of `testdata_file` (or --generate). */
static void cp_start(cp_proc *p, const char *testdata_file, const char *generate)
{
    cp_prepare(p);
    if (testdata_file)
        put_scenario(p, testdata_file);
    cp_launch(p, generate);
}

/* Starts the CP with a scenario written by the test. */
static void cp_start_text(cp_proc *p, const char *scenario)
{
    cp_prepare(p);
    put_scenario_text(p, scenario);
    cp_launch(p, NULL);
}

static void rm_dir(const char *dir)
{
    const char *names[] = {"scenario.yaml", "scenario.yaml.tmp", "cp.log", "port", "port.tmp"};
    char path[160];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* SIGTERM; the CP must exit 0 (clean shutdown). */
static void cp_stop(cp_proc *p)
{
    int status = 0;
    kill(p->pid, SIGTERM);
    pid_t got = waitpid(p->pid, &status, 0);
    live_pid = 0;
    cr_assert_eq(got, p->pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "xdsnode-cp exit status %d",
              status);
    rm_dir(p->dir);
}

/* Suite .fini: after a failed assertion, stops the CP still running
 * (SIGTERM, then SIGKILL after 3 s) and removes its directory. */
static void cp_reap(void)
{
    if (live_pid <= 0)
        return;
    kill(live_pid, SIGTERM);
    double end = now_ms() + 3000;
    while (waitpid(live_pid, NULL, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(live_pid, SIGKILL);
            waitpid(live_pid, NULL, 0);
            break;
        }
        sleep_ms(10);
    }
    live_pid = 0;
    if (live_dir[0] != '\0')
        rm_dir(live_dir);
}

TestSuite(mock_cp, .fini = cp_reap);
TestSuite(mock_cp_sotw, .fini = cp_reap);
TestSuite(mock_cp_delta, .fini = cp_reap);

/* Log lines matching event (and, if set, a string field == value). */
static json_t *log_find(const cp_proc *p, const char *event, const char *key, const char *value)
{
    json_t *found = json_array();
    char *text = slurp(p->log);
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *ev = json_loads(line, 0, NULL);
        cr_assert_not_null(ev, "log line is not JSON: %s", line);
        const char *e = json_string_value(json_object_get(ev, "event"));
        const char *v = key ? json_string_value(json_object_get(ev, key)) : NULL;
        if (e && strcmp(e, event) == 0 && (!key || (v && strcmp(v, value) == 0)))
            json_array_append(found, ev);
        json_decref(ev);
    }
    free(text);
    return found;
}

/* Waits until at least n matching log lines exist; returns them. */
static json_t *log_wait(const cp_proc *p, size_t n, const char *event, const char *key,
                        const char *value)
{
    double end = now_ms() + REPLY_TIMEOUT_MS;
    for (;;) {
        json_t *found = log_find(p, event, key, value);
        if (json_array_size(found) >= n || now_ms() > end)
            return found;
        json_decref(found);
        sleep_ms(20);
    }
}

/* ---- gRPC client stream --------------------------------------------------- */

typedef struct {
    grpc_completion_queue *cq;
    grpc_channel *ch;
    grpc_call *call;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *recv_bb;
    int recv_pending;
    int status_done;
    int tag_start, tag_status, tag_send, tag_recv;
} client;

static gpr_timespec deadline_in(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void client_open(client *c, const char *address, const char *method)
{
    memset(c, 0, sizeof(*c));
    grpc_init();
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_arg arg = {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = -1}};
    grpc_channel_args args = {1, &arg};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    c->ch = grpc_channel_create(address, creds, &args);
    grpc_channel_credentials_release(creds);
    c->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                       grpc_slice_from_static_string(method), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array_init(&c->md_initial);
    grpc_metadata_array_init(&c->md_trailing);
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &c->md_initial;
    cr_assert_eq(grpc_call_start_batch(c->call, ops, 2, &c->tag_start, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_pluck(c->cq, &c->tag_start, deadline_in(5000), NULL);
    cr_assert_eq(ev.type, GRPC_OP_COMPLETE);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &c->md_trailing;
    ops[0].data.recv_status_on_client.status = &c->status;
    ops[0].data.recv_status_on_client.status_details = &c->details;
    cr_assert_eq(grpc_call_start_batch(c->call, ops, 1, &c->tag_status, NULL), GRPC_CALL_OK);
}

static void client_send(client *c, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(msg, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    free(buf);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    cr_assert_eq(grpc_call_start_batch(c->call, &op, 1, &c->tag_send, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_pluck(c->cq, &c->tag_send, deadline_in(5000), NULL);
    cr_assert(ev.type == GRPC_OP_COMPLETE && ev.success, "send failed");
    grpc_byte_buffer_destroy(bb);
}

/* Next message within ms, as a malloc'd buffer; NULL on timeout (the RECV
 * stays pending for the next call). */
static uint8_t *client_recv(client *c, int ms, size_t *len)
{
    if (!c->recv_pending) {
        grpc_op op;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->recv_bb;
        cr_assert_eq(grpc_call_start_batch(c->call, &op, 1, &c->tag_recv, NULL), GRPC_CALL_OK);
        c->recv_pending = 1;
    }
    grpc_event ev = grpc_completion_queue_pluck(c->cq, &c->tag_recv, deadline_in(ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return NULL;
    c->recv_pending = 0;
    cr_assert(ev.success && c->recv_bb != NULL, "stream ended while waiting for a response");
    grpc_byte_buffer_reader r;
    grpc_byte_buffer_reader_init(&r, c->recv_bb);
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    grpc_byte_buffer_destroy(c->recv_bb);
    c->recv_bb = NULL;
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *buf = malloc(*len + 1);
    memcpy(buf, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    return buf;
}

static pb_resp *recv_sotw(client *c)
{
    size_t len;
    uint8_t *buf = client_recv(c, REPLY_TIMEOUT_MS, &len);
    cr_assert_not_null(buf, "no DiscoveryResponse within %d ms", REPLY_TIMEOUT_MS);
    pb_resp *r = envoy__service__discovery__v3__discovery_response__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(r);
    return r;
}

static pb_dresp *recv_delta(client *c)
{
    size_t len;
    uint8_t *buf = client_recv(c, REPLY_TIMEOUT_MS, &len);
    cr_assert_not_null(buf, "no DeltaDiscoveryResponse within %d ms", REPLY_TIMEOUT_MS);
    pb_dresp *r = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(r);
    return r;
}

static void expect_silence(client *c)
{
    size_t len;
    uint8_t *buf = client_recv(c, SILENCE_MS, &len);
    cr_assert_null(buf, "unexpected response (%zu bytes)", len);
}

/* Cancels the stream, waits for its status, frees everything. */
static grpc_status_code client_close(client *c)
{
    grpc_call_cancel(c->call, NULL);
    if (c->recv_pending) {
        grpc_completion_queue_pluck(c->cq, &c->tag_recv, gpr_inf_future(GPR_CLOCK_REALTIME),
                                    NULL);
        grpc_byte_buffer_destroy(c->recv_bb);
    }
    if (!c->status_done)
        grpc_completion_queue_pluck(c->cq, &c->tag_status, gpr_inf_future(GPR_CLOCK_REALTIME),
                                    NULL);
    grpc_status_code status = c->status;
    grpc_slice_unref(c->details);
    grpc_metadata_array_destroy(&c->md_initial);
    grpc_metadata_array_destroy(&c->md_trailing);
    grpc_call_unref(c->call);
    grpc_channel_destroy(c->ch);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
    grpc_shutdown();
    return status;
}

/* ---- requests and response checks ----------------------------------------- */

static pb_node test_node = ENVOY__CONFIG__CORE__V3__NODE__INIT;

static void send_sotw(client *c, const char *type_url, const char *version, const char *nonce,
                      char **names, size_t n_names, Google__Rpc__Status *error)
{
    pb_req req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    test_node.id = "sidecar~10.0.0.1~test.default~default.svc.cluster.local";
    test_node.cluster = "test-cluster";
    test_node.user_agent_name = "xdsnode";
    req.node = &test_node;
    req.type_url = (char *)type_url;
    req.version_info = (char *)(version ? version : "");
    req.response_nonce = (char *)(nonce ? nonce : "");
    req.resource_names = names;
    req.n_resource_names = n_names;
    req.error_detail = error;
    client_send(c, &req.base);
}

static void send_delta(client *c, const char *type_url, const char *nonce, char **sub,
                       size_t n_sub, char **unsub, size_t n_unsub, json_t *initial)
{
    pb_dreq req = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry e[8],
        *ep[8];
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(initial, key, value) {
        envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(&e[n]);
        e[n].key = (char *)key;
        e[n].value = (char *)json_string_value(value);
        ep[n] = &e[n];
        n++;
    }
    test_node.id = "sidecar~10.0.0.1~test.default~default.svc.cluster.local";
    req.node = &test_node;
    req.type_url = (char *)type_url;
    req.response_nonce = (char *)(nonce ? nonce : "");
    req.resource_names_subscribe = sub;
    req.n_resource_names_subscribe = n_sub;
    req.resource_names_unsubscribe = unsub;
    req.n_resource_names_unsubscribe = n_unsub;
    req.initial_resource_versions = ep;
    req.n_initial_resource_versions = n;
    client_send(c, &req.base);
}

/* "name1,name2,..." of the resources (Clusters or CLAs) in order. */
static void any_names(Google__Protobuf__Any **anys, size_t n, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name;
        ProtobufCMessage *m;
        if (strcmp(anys[i]->type_url, CDS) == 0) {
            m = protobuf_c_message_unpack(PB_CLUSTER_DESC, NULL, anys[i]->value.len,
                                          anys[i]->value.data);
            cr_assert_not_null(m);
            name = ((pb_cluster *)m)->name;
        } else {
            cr_assert_str_eq(anys[i]->type_url, EDS);
            m = protobuf_c_message_unpack(PB_CLA_DESC, NULL, anys[i]->value.len,
                                          anys[i]->value.data);
            cr_assert_not_null(m);
            name = ((pb_cla *)m)->cluster_name;
        }
        snprintf(out + strlen(out), outlen - strlen(out), "%s%s", i ? "," : "", name);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void expect_sotw(const pb_resp *r, const char *type_url, const char *version,
                        const char *names)
{
    char got[1024];
    cr_assert_str_eq(r->type_url, type_url);
    cr_assert_str_eq(r->version_info, version);
    cr_assert_str_neq(r->nonce, "");
    any_names(r->resources, r->n_resources, got, sizeof(got));
    cr_assert_str_eq(got, names);
}

/* Resources as "name1,name2" and removed as "r1,r2"; fills versions. */
static void expect_delta(const pb_dresp *r, const char *type_url, const char *names,
                         const char *removed, json_t *versions)
{
    char got[1024] = "", rem[1024] = "";
    Google__Protobuf__Any *anys[64];
    cr_assert_str_eq(r->type_url, type_url);
    cr_assert_str_neq(r->nonce, "");
    cr_assert_leq(r->n_resources, 64);
    for (size_t i = 0; i < r->n_resources; i++) {
        anys[i] = r->resources[i]->resource;
        cr_assert_str_neq(r->resources[i]->version, "");
        if (versions)
            json_object_set_new(versions, r->resources[i]->name,
                                json_string(r->resources[i]->version));
    }
    any_names(anys, r->n_resources, got, sizeof(got));
    for (size_t i = 0; i < r->n_removed_resources; i++)
        snprintf(rem + strlen(rem), sizeof(rem) - strlen(rem), "%s%s", i ? "," : "",
                 r->removed_resources[i]);
    cr_assert_str_eq(got, names);
    cr_assert_str_eq(rem, removed);
}

#define FREE_SOTW(r) envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL)
#define FREE_DELTA(r) \
    envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL)

/* ---- SotW ------------------------------------------------------------------ */

static const char *jstr(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

Test(mock_cp_sotw, cds_wildcard_gets_every_cluster_with_version_and_nonce)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, SOTW_METHOD);

    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    expect_sotw(r, CDS, "v1", "service-a,service-b,static-c");
    json_t *req = log_wait(&p, 1, "request", "type_url", CDS);
    json_t *first = json_array_get(req, 0);
    cr_assert_str_eq(jstr(first, "kind"), "initial");
    cr_assert_str_eq(jstr(first, "mode"), "sotw");
    cr_assert_str_eq(jstr(json_object_get(first, "node"), "id"), test_node.id);
    json_t *resp = log_wait(&p, 1, "response", "nonce", r->nonce);
    cr_assert_eq(json_array_size(resp), 1);
    cr_assert_eq(json_array_size(json_object_get(json_array_get(resp, 0), "resources")), 3);
    json_decref(req);
    json_decref(resp);
    FREE_SOTW(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_sotw, ack_and_nack_are_logged_not_answered_and_stale_ignored)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, SOTW_METHOD);

    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    send_sotw(&c, CDS, "v1", r->nonce, NULL, 0, NULL); /* ACK */
    expect_silence(&c);
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = "cluster service-b: bad";
    send_sotw(&c, CDS, "", r->nonce, NULL, 0, &st); /* NACK */
    expect_silence(&c);
    char *names[] = {"service-a"};
    send_sotw(&c, EDS, "", "not-a-nonce", names, 1, NULL); /* stale */
    expect_silence(&c);

    json_t *acks = log_wait(&p, 2, "request", "response_nonce", r->nonce);
    cr_assert_eq(json_array_size(acks), 2);
    cr_assert(json_is_true(json_object_get(json_array_get(acks, 0), "ack")));
    json_t *nack = json_array_get(acks, 1);
    cr_assert_str_eq(jstr(nack, "kind"), "nack");
    cr_assert(json_is_false(json_object_get(nack, "ack")));
    json_t *detail = json_object_get(nack, "error_detail");
    cr_assert_eq(json_integer_value(json_object_get(detail, "code")), 3);
    cr_assert_str_eq(jstr(detail, "message"), "cluster service-b: bad");
    json_t *stale = log_wait(&p, 1, "request", "kind", "stale");
    cr_assert_eq(json_array_size(stale), 1);
    json_decref(acks);
    json_decref(stale);
    FREE_SOTW(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_sotw, eds_answers_named_assignments_and_subscription_changes)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, SOTW_METHOD);

    char *names[] = {"service-a", "nothing-here"};
    send_sotw(&c, EDS, NULL, NULL, names, 2, NULL);
    pb_resp *r = recv_sotw(&c);
    expect_sotw(r, EDS, "v1", "nothing-here,service-a");
    pb_cla *empty = (pb_cla *)protobuf_c_message_unpack(
        PB_CLA_DESC, NULL, r->resources[0]->value.len, r->resources[0]->value.data);
    cr_assert_eq(empty->n_endpoints, 0, "a missing assignment is sent empty");
    protobuf_c_message_free_unpacked(&empty->base, NULL);
    pb_cla *a = (pb_cla *)protobuf_c_message_unpack(PB_CLA_DESC, NULL,
                                                    r->resources[1]->value.len,
                                                    r->resources[1]->value.data);
    cr_assert_eq(a->n_endpoints, 1);
    cr_assert_eq(a->endpoints[0]->n_lb_endpoints, 2);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    /* an ACK that adds a name is answered with the full new set */
    char *more[] = {"service-a", "service-b-endpoints"};
    send_sotw(&c, EDS, "v1", r->nonce, more, 2, NULL);
    pb_resp *r2 = recv_sotw(&c);
    expect_sotw(r2, EDS, "v1", "service-a,service-b-endpoints");
    cr_assert_str_neq(r2->nonce, r->nonce);
    FREE_SOTW(r);
    FREE_SOTW(r2);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_sotw, scenario_rewrite_pushes_new_version_to_each_type)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, SOTW_METHOD);

    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *cds = recv_sotw(&c);
    send_sotw(&c, CDS, "v1", cds->nonce, NULL, 0, NULL);
    char *names[] = {"service-a"};
    send_sotw(&c, EDS, NULL, NULL, names, 1, NULL);
    pb_resp *eds = recv_sotw(&c);
    send_sotw(&c, EDS, "v1", eds->nonce, names, 1, NULL);
    expect_silence(&c);

    put_scenario(&p, "testdata/xds/basic-v2.yaml");
    pb_resp *cds2 = recv_sotw(&c);
    expect_sotw(cds2, CDS, "v2", "service-a,static-c,service-d");
    pb_resp *eds2 = recv_sotw(&c);
    expect_sotw(eds2, EDS, "v2", "service-a");
    json_t *loaded = log_wait(&p, 1, "scenario_loaded", "reason", "file_changed");
    cr_assert_eq(json_array_size(loaded), 1);
    cr_assert_str_eq(jstr(json_array_get(loaded, 0), "version"), "v2");
    json_decref(loaded);
    FREE_SOTW(cds);
    FREE_SOTW(eds);
    FREE_SOTW(cds2);
    FREE_SOTW(eds2);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_sotw, bad_scenario_is_logged_and_the_old_one_keeps_serving)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, SOTW_METHOD);
    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    FREE_SOTW(r);

    put_scenario_text(&p, "version: v9\nclusters:\n- name: x\n  connect_timeout: 5x\n");
    json_t *errs = log_wait(&p, 1, "scenario_error", NULL, NULL);
    cr_assert_eq(json_array_size(errs), 1);
    const char *why = jstr(json_array_get(errs, 0), "error");
    cr_assert(strstr(why, "scenario.yaml") && strstr(why, "clusters[0].connect_timeout") &&
                  strstr(why, "invalid duration"),
              "error text: %s", why);
    cr_assert_str_eq(jstr(json_array_get(errs, 0), "file"), p.scenario);
    json_decref(errs);
    expect_silence(&c);

    put_scenario_text(&p, "version: v9\nclusters: [ {name: x\n"); /* YAML syntax */
    errs = log_wait(&p, 2, "scenario_error", NULL, NULL);
    cr_assert_eq(json_array_size(errs), 2);
    cr_assert(strstr(jstr(json_array_get(errs, 1), "error"), "line "));
    json_decref(errs);

    /* a new stream still gets v1 */
    client c2;
    client_open(&c2, p.address, SOTW_METHOD);
    send_sotw(&c2, CDS, NULL, NULL, NULL, 0, NULL);
    r = recv_sotw(&c2);
    expect_sotw(r, CDS, "v1", "service-a,service-b,static-c");
    FREE_SOTW(r);
    client_close(&c2);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp, other_methods_are_unimplemented)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters");
    grpc_event ev = grpc_completion_queue_pluck(c.cq, &c.tag_status, deadline_in(5000), NULL);
    cr_assert_eq(ev.type, GRPC_OP_COMPLETE);
    c.status_done = 1;
    cr_assert_eq(c.status, GRPC_STATUS_UNIMPLEMENTED);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp, bad_scenario_at_start_exits_1_with_the_reason)
{
    cp_proc p;
    memset(&p, 0, sizeof(p));
    char *argv[] = {(char *)cp_binary(), "--scenario", "testdata/xds/no-such-file.yaml",
                    "--address", "127.0.0.1:0", "--log", "/dev/null", NULL};
    int status;
    cp_spawn(&p, argv);
    pid_t got = waitpid(p.pid, &status, 0);
    live_pid = 0;
    cr_assert_eq(got, p.pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}

Test(mock_cp, istio_like_scenario_is_served)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/istio-like.yaml", NULL);
    client_open(&c, p.address, SOTW_METHOD);
    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    expect_sotw(r, CDS, "istio-2026-08-30T10:00:00Z/1",
                "outbound|9080||reviews.default.svc.cluster.local,"
                "outbound|9080||ratings.default.svc.cluster.local,BlackHoleCluster");
    pb_cluster *cl = (pb_cluster *)protobuf_c_message_unpack(
        PB_CLUSTER_DESC, NULL, r->resources[0]->value.len, r->resources[0]->value.data);
    cr_assert_str_eq(cl->alt_stat_name, "outbound|9080||reviews.default.svc.cluster.local;");
    cr_assert_eq(cl->n_transport_socket_matches, 2);
    cr_assert_eq(cl->n_filters, 1);
    protobuf_c_message_free_unpacked(&cl->base, NULL);
    FREE_SOTW(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp, generator_serves_n_clusters_and_sighup_bumps_the_version)
{
    cp_proc p;
    client c;
    cp_start(&p, NULL, "3:2");
    client_open(&c, p.address, SOTW_METHOD);
    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    expect_sotw(r, CDS, "gen-1", "cluster-00000,cluster-00001,cluster-00002");
    char *names[] = {"cluster-00001"};
    send_sotw(&c, EDS, NULL, NULL, names, 1, NULL);
    pb_resp *e = recv_sotw(&c);
    expect_sotw(e, EDS, "gen-1", "cluster-00001");
    pb_cla *cla = (pb_cla *)protobuf_c_message_unpack(
        PB_CLA_DESC, NULL, e->resources[0]->value.len, e->resources[0]->value.data);
    cr_assert_eq(cla->endpoints[0]->n_lb_endpoints, 2);
    protobuf_c_message_free_unpacked(&cla->base, NULL);

    kill(p.pid, SIGHUP);
    pb_resp *r2 = recv_sotw(&c);
    expect_sotw(r2, CDS, "gen-2", "cluster-00000,cluster-00001,cluster-00002");
    pb_resp *e2 = recv_sotw(&c);
    expect_sotw(e2, EDS, "gen-2", "cluster-00001");
    cr_assert(e2->resources[0]->value.len != e->resources[0]->value.len ||
              memcmp(e2->resources[0]->value.data, e->resources[0]->value.data,
                     e->resources[0]->value.len) != 0,
              "an endpoint must change");
    FREE_SOTW(r);
    FREE_SOTW(e);
    FREE_SOTW(r2);
    FREE_SOTW(e2);
    client_close(&c);
    cp_stop(&p);
}

/* ---- Delta ------------------------------------------------------------------ */

Test(mock_cp_delta, first_wildcard_request_gets_resources_with_versions)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, DELTA_METHOD);

    send_delta(&c, CDS, NULL, NULL, 0, NULL, 0, NULL);
    pb_dresp *r = recv_delta(&c);
    expect_delta(r, CDS, "service-a,service-b,static-c", "", NULL);
    cr_assert_str_eq(r->system_version_info, "v1");
    cr_assert_eq(strncmp(r->resources[0]->version, "h", 1), 0);
    send_delta(&c, CDS, r->nonce, NULL, 0, NULL, 0, NULL); /* ACK */
    expect_silence(&c);
    json_t *acks = log_wait(&p, 1, "request", "response_nonce", r->nonce);
    cr_assert(json_is_true(json_object_get(json_array_get(acks, 0), "ack")));
    cr_assert_str_eq(jstr(json_array_get(acks, 0), "mode"), "delta");
    json_decref(acks);
    FREE_DELTA(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_delta, initial_resource_versions_suppress_unchanged)
{
    cp_proc p;
    client c;
    json_t *versions = json_object();
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, DELTA_METHOD);
    send_delta(&c, CDS, NULL, NULL, 0, NULL, 0, NULL);
    pb_dresp *r = recv_delta(&c);
    expect_delta(r, CDS, "service-a,service-b,static-c", "", versions);
    FREE_DELTA(r);
    client_close(&c);

    /* reconnect holding service-a (current), static-c (stale), gone-x */
    json_t *held = json_pack("{s:O, s:s, s:s}", "service-a",
                             json_object_get(versions, "service-a"), "static-c", "h0", "gone-x",
                             "h1");
    char *star[] = {"*"};
    client_open(&c, p.address, DELTA_METHOD);
    send_delta(&c, CDS, NULL, star, 1, NULL, 0, held);
    r = recv_delta(&c);
    expect_delta(r, CDS, "service-b,static-c", "gone-x", NULL);
    FREE_DELTA(r);
    json_t *logged = log_wait(&p, 2, "request", "kind", "initial");
    cr_assert_eq(json_object_size(json_object_get(json_array_get(logged, 1),
                                                  "initial_resource_versions")), 3);
    json_decref(logged);
    json_decref(held);
    json_decref(versions);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_delta, eds_subscribe_unsubscribe_and_push_only_subscribed)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, DELTA_METHOD);

    char *two[] = {"service-a", "service-b-endpoints"};
    send_delta(&c, EDS, NULL, two, 2, NULL, 0, NULL);
    pb_dresp *r = recv_delta(&c);
    expect_delta(r, EDS, "service-a,service-b-endpoints", "", NULL);
    send_delta(&c, EDS, r->nonce, NULL, 0, NULL, 0, NULL);
    expect_silence(&c);
    FREE_DELTA(r);

    char *a[] = {"service-a"};
    send_delta(&c, EDS, NULL, NULL, 0, a, 1, NULL); /* unsubscribe: nothing to say */
    expect_silence(&c);

    /* v2 changes service-a (unsubscribed) and drops service-b-endpoints */
    put_scenario(&p, "testdata/xds/basic-v2.yaml");
    r = recv_delta(&c);
    expect_delta(r, EDS, "service-b-endpoints", "", NULL);
    cr_assert_eq(r->n_resources, 1);
    FREE_DELTA(r);

    send_delta(&c, EDS, NULL, a, 1, NULL, 0, NULL); /* subscribe again */
    r = recv_delta(&c);
    expect_delta(r, EDS, "service-a", "", NULL);
    FREE_DELTA(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_delta, scenario_change_sends_changed_added_and_removed_clusters)
{
    cp_proc p;
    client c;
    cp_start(&p, "testdata/xds/basic.yaml", NULL);
    client_open(&c, p.address, DELTA_METHOD);
    send_delta(&c, CDS, NULL, NULL, 0, NULL, 0, NULL);
    pb_dresp *r = recv_delta(&c);
    send_delta(&c, CDS, r->nonce, NULL, 0, NULL, 0, NULL);
    FREE_DELTA(r);

    put_scenario(&p, "testdata/xds/basic-v2.yaml");
    r = recv_delta(&c);
    expect_delta(r, CDS, "service-a,service-d", "service-b", NULL);
    cr_assert_str_eq(r->system_version_info, "v2");
    json_t *resp = log_wait(&p, 1, "response", "nonce", r->nonce);
    cr_assert_eq(json_array_size(json_object_get(json_array_get(resp, 0), "removed")), 1);
    json_decref(resp);
    FREE_DELTA(r);

    /* the same content again (new inode, same bytes): nothing to send */
    put_scenario(&p, "testdata/xds/basic-v2.yaml");
    json_t *loaded = log_wait(&p, 2, "scenario_loaded", "reason", "file_changed");
    cr_assert_eq(json_array_size(loaded), 2);
    json_decref(loaded);
    expect_silence(&c);
    client_close(&c);
    cp_stop(&p);
}

/* Scenarios written by the NACK tests: each cluster's connect_timeout marks
 * its content, so its Delta version changes with it. */
#define EDS_CLUSTER(name, timeout)                                                  \
    "- {name: \"" name "\", type: EDS, connect_timeout: " timeout                    \
    ", eds_cluster_config: {eds_config: {ads: {}}}}\n"
#define NACK_V1 \
    "version: v1\nclusters:\n" EDS_CLUSTER("service-a", "1s") EDS_CLUSTER("service-b", "2s")
/* as testdata/xds/bad-cluster.yaml: service-a changed, service-b gone,
 * service-d added, and two clusters a client rejects (an empty name, an EDS
 * cluster without eds_cluster_config) */
#define NACK_V3_BAD                                                                 \
    "version: v3-bad\nclusters:\n" EDS_CLUSTER("service-a", "3s")                   \
    EDS_CLUSTER("service-d", "1s") "- {name: \"\", type: STATIC, connect_timeout: 1s}\n" \
    "- {name: service-e, type: EDS, connect_timeout: 1s}\n"
#define NACK_V2 \
    "version: v2\nclusters:\n" EDS_CLUSTER("service-a", "3s") EDS_CLUSTER("service-d", "1s")

/* ACK (nack = 0) or NACK of a Delta response, without subscription change. */
static void answer_delta(client *c, const char *type_url, const char *nonce, int nack)
{
    pb_dreq req = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = "rejected by the test";
    test_node.id = "sidecar~10.0.0.1~test.default~default.svc.cluster.local";
    req.node = &test_node;
    req.type_url = (char *)type_url;
    req.response_nonce = (char *)nonce;
    req.error_detail = nack ? &st : NULL;
    client_send(c, &req.base);
}

/* The "kind" the CP logged for the request answering `nonce`. */
static void expect_logged_kind(const cp_proc *p, const char *nonce, const char *kind)
{
    json_t *reqs = log_wait(p, 1, "request", "response_nonce", nonce);
    cr_assert_eq(json_array_size(reqs), 1, "one request answering %s", nonce);
    cr_assert_str_eq(jstr(json_array_get(reqs, 0), "kind"), kind);
    json_decref(reqs);
}

/* Delta CDS wildcard stream on NACK_V1, first response ACKed. */
static void delta_cds_acked_v1(cp_proc *p, client *c)
{
    cp_start_text(p, NACK_V1);
    client_open(c, p->address, DELTA_METHOD);
    send_delta(c, CDS, NULL, NULL, 0, NULL, 0, NULL);
    pb_dresp *r = recv_delta(c);
    expect_delta(r, CDS, "service-a,service-b", "", NULL);
    answer_delta(c, CDS, r->nonce, 0);
    expect_silence(c);
    FREE_DELTA(r);
}

Test(mock_cp_delta, nack_forgets_the_rejected_versions_so_the_next_push_sends_them)
{
    cp_proc p;
    client c;
    json_t *bad = json_object(), *good = json_object();
    delta_cds_acked_v1(&p, &c);

    put_scenario_text(&p, NACK_V3_BAD);
    pb_dresp *r = recv_delta(&c);
    expect_delta(r, CDS, "service-a,service-d,,service-e", "service-b", bad);
    answer_delta(&c, CDS, r->nonce, 1);
    expect_silence(&c); /* the rejected resources are not resent at once */
    expect_logged_kind(&p, r->nonce, "nack");
    FREE_DELTA(r);

    /* the client still holds v1: service-a changed, service-d is new,
     * service-b is gone; "" and service-e it never had */
    put_scenario_text(&p, NACK_V2);
    r = recv_delta(&c);
    expect_delta(r, CDS, "service-a,service-d", "service-b", good);
    cr_assert_str_eq(r->system_version_info, "v2");
    cr_assert_str_eq(jstr(good, "service-a"), jstr(bad, "service-a"),
                     "same content, same version as in the rejected response");
    answer_delta(&c, CDS, r->nonce, 0);
    expect_silence(&c);
    FREE_DELTA(r);
    json_decref(bad);
    json_decref(good);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_delta, nack_of_an_older_unanswered_response_is_not_undone_by_a_later_ack)
{
    cp_proc p;
    client c;
    delta_cds_acked_v1(&p, &c);

    /* two pushes before the client answers either */
    put_scenario_text(&p, "version: x1\nclusters:\n" EDS_CLUSTER("service-a", "5s")
                          EDS_CLUSTER("service-b", "2s"));
    pb_dresp *r2 = recv_delta(&c);
    expect_delta(r2, CDS, "service-a", "", NULL);
    put_scenario_text(&p, "version: x2\nclusters:\n" EDS_CLUSTER("service-a", "5s")
                          EDS_CLUSTER("service-b", "2s") EDS_CLUSTER("service-f", "1s"));
    pb_dresp *r3 = recv_delta(&c);
    expect_delta(r3, CDS, "service-f", "", NULL);
    answer_delta(&c, CDS, r2->nonce, 1);
    answer_delta(&c, CDS, r3->nonce, 0);
    expect_silence(&c);
    expect_logged_kind(&p, r2->nonce, "nack");
    expect_logged_kind(&p, r3->nonce, "ack");

    /* the client holds service-a@v1 and service-f: service-a is resent */
    put_scenario_text(&p, "version: x3\nclusters:\n" EDS_CLUSTER("service-a", "5s")
                          EDS_CLUSTER("service-b", "2s") EDS_CLUSTER("service-f", "1s")
                          EDS_CLUSTER("service-g", "1s"));
    pb_dresp *r4 = recv_delta(&c);
    expect_delta(r4, CDS, "service-a,service-g", "", NULL);
    FREE_DELTA(r2);
    FREE_DELTA(r3);
    FREE_DELTA(r4);
    client_close(&c);
    cp_stop(&p);
}

/* ---- withhold_endpoints (warming) ----------------------------------------- */

/* The log's "resources" of the response with this nonce, as "a,b". */
static void expect_logged_resources(const cp_proc *p, const char *nonce, const char *names)
{
    char got[256] = "";
    json_t *resp = log_wait(p, 1, "response", "nonce", nonce);
    cr_assert_eq(json_array_size(resp), 1);
    size_t i;
    json_t *name;
    json_array_foreach(json_object_get(json_array_get(resp, 0), "resources"), i, name)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? "," : "",
                 json_string_value(name));
    cr_assert_str_eq(got, names);
    json_decref(resp);
}

static size_t cla_lb_endpoints(const Google__Protobuf__Any *any)
{
    pb_cla *cla = (pb_cla *)protobuf_c_message_unpack(PB_CLA_DESC, NULL, any->value.len,
                                                      any->value.data);
    cr_assert_not_null(cla);
    size_t n = cla->n_endpoints ? cla->endpoints[0]->n_lb_endpoints : 0;
    protobuf_c_message_free_unpacked(&cla->base, NULL);
    return n;
}

Test(mock_cp_sotw, withheld_endpoints_get_no_answer_until_released)
{
    cp_proc p;
    client c, c2;
    cp_start(&p, "testdata/xds/warming.yaml", NULL);
    client_open(&c, p.address, SOTW_METHOD);
    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *cds = recv_sotw(&c);
    expect_sotw(cds, CDS, "w1", "service-a,service-b,static-c,service-slow");
    send_sotw(&c, CDS, "w1", cds->nonce, NULL, 0, NULL);
    char *three[] = {"service-a", "service-b-endpoints", "service-slow"};
    send_sotw(&c, EDS, NULL, NULL, three, 3, NULL);
    pb_resp *eds = recv_sotw(&c);
    expect_sotw(eds, EDS, "w1", "service-b-endpoints");
    expect_logged_resources(&p, eds->nonce, "service-b-endpoints");
    send_sotw(&c, EDS, "w1", eds->nonce, three, 3, NULL);
    expect_silence(&c);

    /* only withheld names: no response at all, not even an empty one */
    client_open(&c2, p.address, SOTW_METHOD);
    char *withheld[] = {"service-a", "service-slow"};
    send_sotw(&c2, EDS, NULL, NULL, withheld, 2, NULL);
    expect_silence(&c2);

    put_scenario(&p, "testdata/xds/warming-released.yaml");
    pb_resp *cds2 = recv_sotw(&c);
    expect_sotw(cds2, CDS, "w2", "service-a,service-b,static-c,service-slow");
    pb_resp *eds2 = recv_sotw(&c);
    expect_sotw(eds2, EDS, "w2", "service-a,service-b-endpoints");
    cr_assert_eq(cla_lb_endpoints(eds2->resources[0]), 2);
    pb_resp *eds3 = recv_sotw(&c2);
    expect_sotw(eds3, EDS, "w2", "service-a");
    expect_silence(&c2);
    FREE_SOTW(cds);
    FREE_SOTW(eds);
    FREE_SOTW(cds2);
    FREE_SOTW(eds2);
    FREE_SOTW(eds3);
    client_close(&c2);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_delta, withheld_endpoints_get_no_answer_until_released)
{
    cp_proc p;
    client c, c2;
    cp_start(&p, "testdata/xds/warming.yaml", NULL);
    client_open(&c, p.address, DELTA_METHOD);
    char *three[] = {"service-a", "service-b-endpoints", "service-slow"};
    send_delta(&c, EDS, NULL, three, 3, NULL, 0, NULL);
    pb_dresp *r = recv_delta(&c);
    expect_delta(r, EDS, "service-b-endpoints", "", NULL);
    expect_logged_resources(&p, r->nonce, "service-b-endpoints");
    answer_delta(&c, EDS, r->nonce, 0);
    expect_silence(&c);
    FREE_DELTA(r);

    /* only withheld names: not even the empty first response */
    client_open(&c2, p.address, DELTA_METHOD);
    char *slow[] = {"service-slow"};
    send_delta(&c2, EDS, NULL, slow, 1, NULL, 0, NULL);
    expect_silence(&c2);

    put_scenario(&p, "testdata/xds/warming-released.yaml");
    r = recv_delta(&c);
    expect_delta(r, EDS, "service-a", "", NULL);
    cr_assert_eq(cla_lb_endpoints(r->resources[0]->resource), 2);
    answer_delta(&c, EDS, r->nonce, 0);
    FREE_DELTA(r);
    expect_silence(&c2);

    /* withheld again: the client keeps what it holds, nothing is said */
    put_scenario(&p, "testdata/xds/warming.yaml");
    expect_silence(&c);

    /* basic.yaml withholds nothing and has no service-slow assignment */
    put_scenario(&p, "testdata/xds/basic.yaml");
    r = recv_delta(&c);
    expect_delta(r, EDS, "service-slow", "", NULL);
    cr_assert_eq(cla_lb_endpoints(r->resources[0]->resource), 0);
    FREE_DELTA(r);
    r = recv_delta(&c2);
    expect_delta(r, EDS, "service-slow", "", NULL);
    FREE_DELTA(r);
    client_close(&c2);
    client_close(&c);
    cp_stop(&p);
}

/* ---- sequences ------------------------------------------------------------- */

/* Cluster "a" whose connect_timeout marks the version; step 2 adds "b". */
#define SEQUENCE_SCENARIO(count)                                                     \
    "version: s\n"                                                                  \
    "clusters:\n" EDS_CLUSTER("a", "1s")                                            \
    "sequence:\n"                                                                   \
    "  count: " count "\n"                                                          \
    "  steps:\n"                                                                    \
    "  - clusters:\n    " EDS_CLUSTER("a", "2s")                                    \
    "  - clusters:\n    " EDS_CLUSTER("a", "3s") "    " EDS_CLUSTER("b", "1s")

/* connect_timeout seconds of the SotW response's cluster `name`, -1 if absent. */
static long sotw_cluster_timeout(const pb_resp *r, const char *name)
{
    long seconds = -1;
    for (size_t i = 0; i < r->n_resources; i++) {
        pb_cluster *cl = (pb_cluster *)protobuf_c_message_unpack(
            PB_CLUSTER_DESC, NULL, r->resources[i]->value.len, r->resources[i]->value.data);
        cr_assert_not_null(cl);
        if (strcmp(cl->name, name) == 0)
            seconds = cl->connect_timeout ? (long)cl->connect_timeout->seconds : 0;
        protobuf_c_message_free_unpacked(&cl->base, NULL);
    }
    return seconds;
}

/* ACKs r (CDS, SotW wildcard) and returns the next response. */
static pb_resp *sotw_ack_next(client *c, pb_resp *r)
{
    send_sotw(c, CDS, r->version_info, r->nonce, NULL, 0, NULL);
    FREE_SOTW(r);
    return recv_sotw(c);
}

Test(mock_cp_sotw, sequence_pushes_each_version_after_the_ack_then_stops)
{
    cp_proc p;
    client c;
    cp_start_text(&p, SEQUENCE_SCENARIO("3"));
    client_open(&c, p.address, SOTW_METHOD);

    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    expect_sotw(r, CDS, "s", "a");
    cr_assert_eq(sotw_cluster_timeout(r, "a"), 1);
    expect_silence(&c); /* nothing more before the ACK */
    r = sotw_ack_next(&c, r);
    expect_sotw(r, CDS, "s-1", "a");
    cr_assert_eq(sotw_cluster_timeout(r, "a"), 2, "step 1 replaces a");
    r = sotw_ack_next(&c, r);
    expect_sotw(r, CDS, "s-2", "a,b");
    cr_assert_eq(sotw_cluster_timeout(r, "a"), 3, "step 2 replaces a and adds b");
    r = sotw_ack_next(&c, r);
    expect_sotw(r, CDS, "s-3", "a");
    cr_assert_eq(sotw_cluster_timeout(r, "a"), 2, "steps are cycled");
    send_sotw(&c, CDS, "s-3", r->nonce, NULL, 0, NULL);
    expect_silence(&c); /* count reached */
    json_t *done = log_wait(&p, 1, "sequence_done", NULL, NULL);
    cr_assert_eq(json_array_size(done), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(done, 0), "pushed")), 3);
    cr_assert_str_eq(jstr(json_array_get(done, 0), "version"), "s-3");
    json_t *loaded = log_wait(&p, 1, "scenario_loaded", NULL, NULL);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(loaded, 0), "sequence")), 3);
    json_decref(done);
    json_decref(loaded);
    FREE_SOTW(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_sotw, sequence_stops_at_a_nack)
{
    cp_proc p;
    client c;
    cp_start_text(&p, SEQUENCE_SCENARIO("5"));
    client_open(&c, p.address, SOTW_METHOD);

    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    r = sotw_ack_next(&c, r);
    expect_sotw(r, CDS, "s-1", "a");
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = "rejected by the test";
    send_sotw(&c, CDS, "s", r->nonce, NULL, 0, &st);
    expect_silence(&c);
    json_t *stopped = log_wait(&p, 1, "sequence_stopped", NULL, NULL);
    cr_assert_eq(json_array_size(stopped), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(stopped, 0), "pushed")), 1);
    cr_assert_str_eq(jstr(json_array_get(stopped, 0), "version"), "s-1");
    json_decref(stopped);
    FREE_SOTW(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp_sotw, sequence_waits_for_every_stream_and_every_type_sent)
{
    cp_proc p;
    client c1, c2;
    cp_start_text(&p, SEQUENCE_SCENARIO("2"));
    client_open(&c1, p.address, SOTW_METHOD);
    client_open(&c2, p.address, SOTW_METHOD);

    send_sotw(&c1, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r1 = recv_sotw(&c1);
    send_sotw(&c2, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r2 = recv_sotw(&c2);
    char *names[] = {"a"};
    send_sotw(&c2, EDS, NULL, NULL, names, 1, NULL);
    pb_resp *e2 = recv_sotw(&c2);
    expect_sotw(e2, EDS, "s", "a");
    send_sotw(&c1, CDS, "s", r1->nonce, NULL, 0, NULL);
    send_sotw(&c2, CDS, "s", r2->nonce, NULL, 0, NULL);
    expect_silence(&c1); /* c2 has not ACKed its EDS response */
    send_sotw(&c2, EDS, "s", e2->nonce, names, 1, NULL);
    pb_resp *n1 = recv_sotw(&c1);
    expect_sotw(n1, CDS, "s-1", "a");
    pb_resp *n2 = recv_sotw(&c2);
    expect_sotw(n2, CDS, "s-1", "a");
    pb_resp *ne2 = recv_sotw(&c2);
    expect_sotw(ne2, EDS, "s-1", "a");
    FREE_SOTW(r1);
    FREE_SOTW(r2);
    FREE_SOTW(e2);
    FREE_SOTW(n1);
    FREE_SOTW(n2);
    FREE_SOTW(ne2);
    client_close(&c1);
    client_close(&c2);
    cp_stop(&p);
}

Test(mock_cp_delta, sequence_sends_each_changed_version_after_the_ack)
{
    cp_proc p;
    client c;
    cp_start_text(&p, SEQUENCE_SCENARIO("2"));
    client_open(&c, p.address, DELTA_METHOD);

    send_delta(&c, CDS, NULL, NULL, 0, NULL, 0, NULL);
    pb_dresp *r = recv_delta(&c);
    expect_delta(r, CDS, "a", "", NULL);
    cr_assert_str_eq(r->system_version_info, "s");
    expect_silence(&c);
    answer_delta(&c, CDS, r->nonce, 0);
    FREE_DELTA(r);
    r = recv_delta(&c);
    expect_delta(r, CDS, "a", "", NULL);
    cr_assert_str_eq(r->system_version_info, "s-1");
    answer_delta(&c, CDS, r->nonce, 0);
    FREE_DELTA(r);
    r = recv_delta(&c);
    expect_delta(r, CDS, "a,b", "", NULL);
    cr_assert_str_eq(r->system_version_info, "s-2");
    answer_delta(&c, CDS, r->nonce, 0);
    expect_silence(&c);
    json_t *done = log_wait(&p, 1, "sequence_done", NULL, NULL);
    cr_assert_eq(json_array_size(done), 1);
    json_decref(done);
    FREE_DELTA(r);
    client_close(&c);
    cp_stop(&p);
}

Test(mock_cp, a_new_scenario_replaces_a_running_sequence)
{
    cp_proc p;
    client c;
    cp_start_text(&p, SEQUENCE_SCENARIO("100"));
    client_open(&c, p.address, SOTW_METHOD);

    send_sotw(&c, CDS, NULL, NULL, NULL, 0, NULL);
    pb_resp *r = recv_sotw(&c);
    r = sotw_ack_next(&c, r);
    expect_sotw(r, CDS, "s-1", "a");
    put_scenario_text(&p, "version: plain\nclusters:\n" EDS_CLUSTER("z", "1s"));
    pb_resp *z = recv_sotw(&c);
    expect_sotw(z, CDS, "plain", "z");
    send_sotw(&c, CDS, "plain", z->nonce, NULL, 0, NULL);
    expect_silence(&c); /* the new scenario has no sequence */
    FREE_SOTW(r);
    FREE_SOTW(z);
    client_close(&c);
    cp_stop(&p);
}
