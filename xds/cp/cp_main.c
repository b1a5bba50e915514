/*
 * cp_main.c: xdsnode-cp, the mock xDS control plane.
 *
 *   xdsnode-cp [--address HOST:PORT] (--scenario FILE | --generate N:M)
 *              [--log FILE] [--port-file FILE]
 *
 * Serves the scenario over ADS (SotW and Delta), reloads it when the file
 * changes (polled every 200 ms: mtime, size, inode) or on SIGHUP, pushes
 * the scenario's `sequence` of versions, one per ACK (cp_server.h), logs
 * the conversation as JSON lines (cp_log.h). SIGTERM/SIGINT stop it
 * cleanly. Exit status: 0 after a clean stop, 1 for a start-up error
 * (bad arguments, unreadable or invalid scenario, cannot listen).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cp_log.h"
#include "cp_server.h"
#include "cp_snapshot.h"

#define CP_DEFAULT_ADDRESS "127.0.0.1:18000"
#define CP_WATCH_INTERVAL_MS 200
#define CP_POLL_SLICE_MS 50

typedef struct {
    const char *address;
    const char *scenario;
    const char *log_path;
    const char *port_file;
    unsigned gen_clusters, gen_endpoints;
    int generate;
} cp_options;

/* What identifies one version of the scenario file. */
typedef struct {
    int ok; /* stat succeeded */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup_signal(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: xdsnode-cp [--address HOST:PORT] (--scenario FILE | --generate N:M)\n"
                 "                  [--log FILE] [--port-file FILE]\n"
                 "  --address    listen address (default " CP_DEFAULT_ADDRESS "; port 0 picks one)\n"
                 "  --scenario   scenario file, YAML or JSON (proto xdsnode.cp.v1.Scenario)\n"
                 "  --generate   N EDS clusters of M endpoints each (scale benchmark)\n"
                 "  --log        JSON-lines log file, appended (default stdout)\n"
                 "  --port-file  write the bound port here once listening\n");
}

static int parse_generate(const char *text, cp_options *o, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(text, &end, 10);
    if (errno == 0 && *end == ':' && end != text) {
        const char *m_text = end + 1;
        unsigned long m = strtoul(m_text, &end, 10);
        if (errno == 0 && *end == '\0' && end != m_text && n > 0 && n <= 99999 && m > 0 &&
            m <= 1000000) {
            o->gen_clusters = (unsigned)n;
            o->gen_endpoints = (unsigned)m;
            o->generate = 1;
            return 0;
        }
    }
    snprintf(err, errlen, "--generate: expected N:M (1..99999 clusters, 1..1000000 endpoints), "
                          "got \"%s\"", text);
    return -1;
}

/* Returns 0, 1 for --help, or -1 with err. */
static int parse_args(int argc, char **argv, cp_options *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->address = CP_DEFAULT_ADDRESS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s: %s", a,
                     a[0] == '-' ? "missing value" : "unexpected argument");
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--address") == 0)
            o->address = v;
        else if (strcmp(a, "--scenario") == 0)
            o->scenario = v;
        else if (strcmp(a, "--log") == 0)
            o->log_path = v;
        else if (strcmp(a, "--port-file") == 0)
            o->port_file = v;
        else if (strcmp(a, "--generate") == 0) {
            if (parse_generate(v, o, err, errlen) != 0)
                return -1;
        } else {
            snprintf(err, errlen, "unknown option %s", a);
            return -1;
        }
    }
    if ((o->scenario != NULL) == (o->generate != 0)) {
        snprintf(err, errlen, "exactly one of --scenario FILE or --generate N:M is required");
        return -1;
    }
    return 0;
}

static void file_identify(const char *path, file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof(*id));
    if (stat(path, &st) != 0)
        return;
    id->ok = 1;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
}

static int file_id_equal(const file_id *a, const file_id *b)
{
    return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void log_loaded(const cp_options *o, const cp_snapshot *snap, const char *reason)
{
    json_t *ev = cp_log_event_new("scenario_loaded");
    if (o->generate)
        json_object_set_new(ev, "generate", json_sprintf("%u:%u", o->gen_clusters,
                                                         o->gen_endpoints));
    else
        json_object_set_new(ev, "file", json_string(o->scenario));
    json_object_set_new(ev, "reason", json_string(reason));
    json_object_set_new(ev, "version", json_string(snap->version));
    json_object_set_new(ev, "clusters", json_integer((json_int_t)snap->types[CP_TYPE_CLUSTER].n));
    json_object_set_new(ev, "endpoints", json_integer((json_int_t)snap->types[CP_TYPE_CLA].n));
    if (snap->sequence != NULL)
        json_object_set_new(ev, "sequence", json_integer(snap->sequence->count));
    cp_log_emit(ev);
}

static void log_error(const cp_options *o, const char *reason, const char *error)
{
    json_t *ev = cp_log_event_new("scenario_error");
    json_object_set_new(ev, "file", json_string(o->scenario ? o->scenario : "(generator)"));
    json_object_set_new(ev, "reason", json_string(reason));
    json_object_set_new(ev, "error", json_string(error));
    cp_log_emit(ev);
}

static int load_snapshot(const cp_options *o, unsigned generation, cp_snapshot **out, char *err,
                         size_t errlen)
{
    if (o->generate)
        return cp_snapshot_generate(o->gen_clusters, o->gen_endpoints, generation, out, err,
                                    errlen);
    return cp_snapshot_load_file(o->scenario, out, err, errlen);
}

static int write_port_file(const char *path, int port, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write port file: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup_signal;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Reloads (file change or SIGHUP); a failure keeps the current snapshot. */
static void reload(cp_server *srv, const cp_options *o, unsigned *generation, const char *reason)
{
    char err[2048];
    cp_snapshot *snap;
    unsigned next = o->generate ? *generation + 1 : *generation;

    if (load_snapshot(o, next, &snap, err, sizeof(err)) != 0) {
        log_error(o, reason, err);
        return;
    }
    *generation = next;
    log_loaded(o, snap, reason);
    cp_server_set_snapshot(srv, snap);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void serve(cp_server *srv, const cp_options *o, file_id *seen)
{
    unsigned generation = 1;
    double next_watch = now_ms() + CP_WATCH_INTERVAL_MS;

    while (!stop_requested) {
        cp_server_poll(srv, CP_POLL_SLICE_MS);
        if (reload_requested) {
            reload_requested = 0;
            if (o->scenario)
                file_identify(o->scenario, seen);
            reload(srv, o, &generation, "sighup");
        }
        if (o->scenario == NULL || now_ms() < next_watch)
            continue;
        next_watch = now_ms() + CP_WATCH_INTERVAL_MS;
        file_id cur;
        file_identify(o->scenario, &cur);
        if (file_id_equal(&cur, seen))
            continue;
        *seen = cur;
        if (cur.ok)
            reload(srv, o, &generation, "file_changed");
        else
            log_error(o, "file_changed", "cannot stat the scenario file; keeping the last one");
    }
}

static int run(const cp_options *o, char *err, size_t errlen)
{
    cp_snapshot *snap;
    cp_server *srv;
    file_id seen;
    int port;

    if (cp_log_open(o->log_path, err, errlen) != 0)
        return -1;
    if (o->scenario)
        file_identify(o->scenario, &seen);
    if (load_snapshot(o, 1, &snap, err, errlen) != 0) {
        log_error(o, "start", err);
        return -1;
    }
    log_loaded(o, snap, "start");
    if (cp_server_start(o->address, snap, &srv, &port, err, errlen) != 0)
        return -1;
    json_t *ev = cp_log_event_new("listening");
    json_object_set_new(ev, "address", json_string(o->address));
    json_object_set_new(ev, "port", json_integer(port));
    cp_log_emit(ev);
    int rc = 0;
    if (o->port_file && write_port_file(o->port_file, port, err, errlen) != 0)
        rc = -1;
    if (rc == 0)
        serve(srv, o, &seen);
    cp_server_stop(srv);
    cp_log_emit(cp_log_event_new("stopped"));
    return rc;
}

int main(int argc, char **argv)
{
    char err[4096];
    cp_options o;

    int rc = parse_args(argc, argv, &o, err, sizeof(err));
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "xdsnode-cp: %s\n", err);
        usage(stderr);
        return 1;
    }
    install_signals();
    rc = run(&o, err, sizeof(err));
    cp_log_close();
    if (rc != 0) {
        fprintf(stderr, "xdsnode-cp: %s\n", err);
        return 1;
    }
    return 0;
}
