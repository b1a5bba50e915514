/* tcp_proxy.c: one upstream connection per downstream connection (tcp_proxy.h). */
#include "xdsnode/tcp_proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-aliasing"
#include <ev.h>
#pragma GCC diagnostic pop

#include "xdsnode/access_log.h"
#include "xdsnode/buffer.h"
#include "xdsnode/cluster_stats.h"
#include "xdsnode/log.h"
#include "xdsnode/upstream_socket.h"
#include "xdsnode/upstream_tls.h"

#define TCP_READ_CHUNK 65536

/* One direction: bytes read from `from` wait in `buf` for `to`. */
typedef struct {
    int from_eof;   /* the reading side sent FIN */
    int shut_sent;  /* FIN forwarded to the writing side */
    buffer buf;
} tcp_dir;

typedef struct {
    worker_conn link;
    worker *w;
    const listener_config *cfg;
    worker_cluster *wc;
    size_t host;
    int dfd, ufd;
    upstream_tls_conn *tls;  /* TLS clusters: the upstream side's SSL */
    int tcp_connected;       /* TLS: the handshake runs (connected is set after it) */
    int connected, counted_cx;
    ev_io d_rio, d_wio, u_rio, u_wio;
    ev_timer timer;
    tcp_dir up;   /* downstream -> upstream */
    tcp_dir down; /* upstream -> downstream */
    uint64_t bytes_rx, bytes_tx;
    struct timespec start;
    char flags[8];
} tcp_session;

static void session_close(tcp_session *t)
{
    struct ev_loop *loop = worker_loop(t->w);
    ev_io_stop(loop, &t->d_rio);
    ev_io_stop(loop, &t->d_wio);
    ev_io_stop(loop, &t->u_rio);
    ev_io_stop(loop, &t->u_wio);
    ev_timer_stop(loop, &t->timer);
    if (t->cfg->access_log_path) {
        access_log_entry e = {.start = t->start, .response_flags = t->flags,
                              .bytes_received = t->bytes_rx, .bytes_sent = t->bytes_tx,
                              .upstream_service_time_ms = -1};
        char line[1024];
        size_t n = access_log_format(&e, line, sizeof(line));
        worker_access_log(t->w, t->cfg->access_log_path, line, n);
    }
    close(t->dfd);
    upstream_tls_conn_free(t->tls); /* close_notify unless it failed */
    if (t->ufd >= 0)
        close(t->ufd);
    if (t->wc) {
        dp_cluster *dc = t->wc->dc;
        if (t->counted_cx) {
            cb_release(&dc->cb, PRIORITY_DEFAULT, CB_CONNECTIONS);
            stats_dec(dc->stats, CLUSTER_STAT_UPSTREAM_CX_ACTIVE);
            host_stat_add(&dc->hosts[t->host], HOST_STAT_CX_ACTIVE, -1);
            stats_inc(dc->stats, CLUSTER_STAT_UPSTREAM_CX_DESTROY);
        }
        worker_cluster_release(t->wc);
    }
    worker_conn_remove(t->w, &t->link);
    buffer_free(&t->up.buf);
    buffer_free(&t->down.buf);
    free(t);
}

static void session_close_link(worker_conn *l) { session_close((tcp_session *)l); }

static void touch(tcp_session *t)
{
    if (!t->connected)
        return; /* the connect timeout runs */
    if (t->cfg->tcp_idle_timeout_ms) {
        t->timer.repeat = (double)t->cfg->tcp_idle_timeout_ms / 1000.0;
        ev_timer_again(worker_loop(t->w), &t->timer);
    } else {
        ev_timer_stop(worker_loop(t->w), &t->timer);
    }
}

/* Both directions finished: FIN seen and forwarded each way. */
static int session_done(const tcp_session *t)
{
    return t->up.shut_sent && t->down.shut_sent;
}

/* Writes dir's buffer to fd; forwards FIN once drained. Returns -1 on error. */
static int pump_out(tcp_session *t, tcp_dir *d, int fd, ev_io *wio, ev_io *peer_rio)
{
    struct ev_loop *loop = worker_loop(t->w);
    upstream_tls_conn *tls = d == &t->up ? t->tls : NULL;
    long w = tls ? upstream_tls_write(tls, &d->buf) : buffer_write_fd(&d->buf, fd);
    if (w < 0)
        return -1;
    if (d == &t->down)
        t->bytes_tx += (uint64_t)w;
    if (buffer_len(&d->buf) > 0) {
        ev_io_start(loop, wio);
    } else {
        ev_io_stop(loop, wio);
        if (d->from_eof && !d->shut_sent) {
            if (tls)
                upstream_tls_shutdown(tls); /* close_notify, then the FIN */
            shutdown(fd, SHUT_WR);
            d->shut_sent = 1;
        }
    }
    if (t->connected && buffer_len(&d->buf) <= t->cfg->buffer_limit && !d->from_eof) {
        ev_io_start(loop, peer_rio); /* room again: read the source */
        if (d == &t->down && t->tls && upstream_tls_pending(t->tls))
            ev_feed_event(loop, peer_rio, EV_READ);
    }
    return 0;
}

/* Reads from fd into dir; pauses when the buffer passes the limit. */
static int pump_in(tcp_session *t, tcp_dir *d, int fd, ev_io *rio)
{
    char buf[TCP_READ_CHUNK];
    upstream_tls_conn *tls = d == &t->down ? t->tls : NULL;
    ssize_t n = tls ? upstream_tls_read(tls, buf, sizeof(buf)) : recv(fd, buf, sizeof(buf), 0);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    if (n == 0) {
        d->from_eof = 1;
        ev_io_stop(worker_loop(t->w), rio);
        return 0;
    }
    if (d == &t->up)
        t->bytes_rx += (uint64_t)n;
    if (buffer_append(&d->buf, buf, (size_t)n) != 0)
        return -1;
    if (buffer_len(&d->buf) > t->cfg->buffer_limit)
        ev_io_stop(worker_loop(t->w), rio);
    else if (tls && upstream_tls_pending(tls))
        ev_feed_event(worker_loop(t->w), rio, EV_READ); /* the SSL holds more */
    return 0;
}

static void after_io(tcp_session *t, int rc)
{
    if (rc == 0) {
        rc = t->connected ? pump_out(t, &t->up, t->ufd, &t->u_wio, &t->d_rio) : 0;
        if (rc == 0)
            rc = pump_out(t, &t->down, t->dfd, &t->d_wio, &t->u_rio);
    }
    if (rc != 0 || session_done(t)) {
        session_close(t);
        return;
    }
    touch(t);
}

static void on_down_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    tcp_session *t = w->data;
    after_io(t, pump_in(t, &t->up, t->dfd, &t->d_rio));
}

/* TLS: one step of the handshake; the session counts as connected (and
 * the connect timeout stops) once it is done, as in Envoy. */
static void up_tls_handshake(tcp_session *t)
{
    struct ev_loop *loop = worker_loop(t->w);
    dp_cluster *dc = t->wc->dc;
    switch (upstream_tls_handshake(t->tls)) {
    case UPSTREAM_TLS_DONE:
        ev_io_stop(loop, &t->u_wio);
        t->connected = 1;
        ev_io_start(loop, &t->u_rio);
        after_io(t, 0);
        break;
    case UPSTREAM_TLS_WANT_READ:
        ev_io_stop(loop, &t->u_wio);
        ev_io_start(loop, &t->u_rio);
        break;
    case UPSTREAM_TLS_WANT_WRITE:
        ev_io_start(loop, &t->u_wio);
        break;
    case UPSTREAM_TLS_FAILED:
        log_debug("tcp_proxy: cluster '%s': TLS handshake failed: %s", dc->cfg->name,
                  upstream_tls_failure_reason(t->tls));
        dp_cluster_connect_failed(dc, t->host);
        memcpy(t->flags, "UF", 3);
        session_close(t);
        break;
    }
}

static void on_up_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    tcp_session *t = w->data;
    if (t->tls && !t->connected) {
        up_tls_handshake(t);
        return;
    }
    after_io(t, pump_in(t, &t->down, t->ufd, &t->u_rio));
}

static void on_down_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    after_io(w->data, 0);
}

static void on_up_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    tcp_session *t = w->data;
    if (t->tls && t->tcp_connected && !t->connected) {
        up_tls_handshake(t);
        return;
    }
    if (!t->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(t->ufd, SOL_SOCKET, SO_ERROR, &err, &len);
        dp_cluster *dc = t->wc->dc;
        if (err != 0) {
            dp_cluster_connect_failed(dc, t->host);
            memcpy(t->flags, "UF", 3);
            session_close(t);
            return;
        }
        if (t->tls) {
            t->tcp_connected = 1;
            up_tls_handshake(t);
            return;
        }
        t->connected = 1;
        ev_io_start(worker_loop(t->w), &t->u_rio);
    }
    after_io(t, 0);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tcp_session *t = w->data;
    if (!t->connected && t->wc) {
        stats_inc(t->wc->dc->stats, CLUSTER_STAT_UPSTREAM_CX_CONNECT_TIMEOUT);
        dp_cluster_connect_failed(t->wc->dc, t->host);
        memcpy(t->flags, "UF", 3);
    }
    session_close(t);
}

/* Picks a host and starts connecting. Returns -1 when the session ends. */
static int session_connect(tcp_session *t)
{
    worker_cluster *wc = worker_cluster_find(t->w, t->cfg->tcp_cluster, strlen(t->cfg->tcp_cluster));
    if (wc == NULL) {
        memcpy(t->flags, "NC", 3);
        return -1;
    }
    t->wc = wc;
    worker_cluster_hold(wc);
    dp_cluster *dc = wc->dc;
    int h = lb_pick(dc->cfg, dc->rq_active, &wc->lb);
    if (h < 0) {
        stats_inc(dc->stats, CLUSTER_STAT_UPSTREAM_CX_NONE_HEALTHY);
        memcpy(t->flags, "UH", 3);
        return -1;
    }
    if (!cb_try_acquire_connection(&dc->cb, PRIORITY_DEFAULT,
                                   atomic_load(&dc->hosts[h].v[HOST_STAT_CX_ACTIVE]))) {
        stats_inc(dc->stats, CLUSTER_STAT_UPSTREAM_CX_OVERFLOW);
        memcpy(t->flags, "UO", 3);
        return -1;
    }
    t->host = (size_t)h;
    t->counted_cx = 1;
    const cluster_host *host = &dc->cfg->hosts[h];
    stats_inc(dc->stats, CLUSTER_STAT_UPSTREAM_CX_TOTAL);
    stats_add(dc->stats, CLUSTER_STAT_UPSTREAM_CX_ACTIVE, 1);
    host_stat_add(&dc->hosts[h], HOST_STAT_CX_TOTAL, 1);
    host_stat_add(&dc->hosts[h], HOST_STAT_CX_ACTIVE, 1);
    t->ufd = socket(host->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->ufd < 0)
        return -1;
    char err[160];
    if (upstream_socket_apply(t->ufd, dc->cfg, err, sizeof(err)) != 0)
        log_warn("cluster '%s': %s", dc->cfg->name, err);
    if (dc->tls && (t->tls = upstream_tls_conn_new(dc->tls, dc->ssl_stats, t->ufd,
                                                   UPSTREAM_TLS_ALPN_NONE)) == NULL)
        return -1;
    if (connect(t->ufd, (const struct sockaddr *)&host->addr, host->addrlen) != 0 &&
        errno != EINPROGRESS) {
        dp_cluster_connect_failed(dc, t->host);
        memcpy(t->flags, "UF", 3);
        return -1;
    }
    struct ev_loop *loop = worker_loop(t->w);
    ev_io_init(&t->u_rio, on_up_read, t->ufd, EV_READ);
    ev_io_init(&t->u_wio, on_up_write, t->ufd, EV_WRITE);
    t->u_rio.data = t->u_wio.data = t;
    ev_io_start(loop, &t->u_wio);
    ev_timer_set(&t->timer, (double)dc->cfg->connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(loop, &t->timer);
    return 0;
}

int tcp_proxy_session_create(worker *w, const listener_config *cfg, int fd,
                             const struct sockaddr_storage *peer)
{
    (void)peer;
    tcp_session *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        close(fd);
        return -1;
    }
    t->w = w;
    t->cfg = cfg;
    t->dfd = fd;
    t->ufd = -1;
    t->link.close = session_close_link;
    clock_gettime(CLOCK_REALTIME, &t->start);
    buffer_init(&t->up.buf);
    buffer_init(&t->down.buf);
    ev_io_init(&t->d_rio, on_down_read, fd, EV_READ);
    ev_io_init(&t->d_wio, on_down_write, fd, EV_WRITE);
    ev_timer_init(&t->timer, on_timer, 1., 0.);
    t->d_rio.data = t->d_wio.data = t->timer.data = t;
    worker_conn_add(w, &t->link);
    if (session_connect(t) != 0) {
        session_close(t);
        return -1;
    }
    ev_io_start(worker_loop(w), &t->d_rio);
    return 0;
}
