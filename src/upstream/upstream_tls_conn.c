/* upstream_tls_conn.c: one client SSL on one upstream socket: handshake,
 * reads, writes, close_notify, Envoy's failure reasons and ssl.* stats
 * (upstream_tls.h). */
#include "upstream_tls_internal.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ALPN wire formats of the pools' fallbacks. */
static const unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
static const unsigned char alpn_h2[] = {2, 'h', '2'};

static void count(upstream_tls_conn *t, int stat)
{
    if (t->stats)
        stats_inc(t->stats, (size_t)stat);
}

upstream_tls_conn *upstream_tls_conn_new(upstream_tls_ctx *ctx, stats_scope *stats, int fd,
                                         upstream_tls_alpn fallback)
{
    upstream_tls_conn *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ssl = SSL_new(ctx->ssl_ctx);
    int ok = t->ssl != NULL && SSL_set_fd(t->ssl, fd) == 1;
    if (ok) {
        SSL_set_connect_state(t->ssl);
        SSL_set_app_data(t->ssl, t);
        if (ctx->sni[0])
            ok = SSL_set_tlsext_host_name(t->ssl, ctx->sni) == 1;
    }
    /* Envoy: the configured alpn_protocols, else the pool's protocol. */
    if (ok && !ctx->alpn_configured && fallback != UPSTREAM_TLS_ALPN_NONE) {
        const unsigned char *wire = fallback == UPSTREAM_TLS_ALPN_H2 ? alpn_h2 : alpn_http11;
        unsigned len = fallback == UPSTREAM_TLS_ALPN_H2 ? sizeof(alpn_h2) : sizeof(alpn_http11);
        ok = SSL_set_alpn_protos(t->ssl, wire, len) == 0;
    }
    if (!ok) {
        ERR_clear_error();
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    upstream_tls_ctx_resume(ctx, t->ssl);
    upstream_tls_ctx_ref(ctx);
    t->ctx = ctx;
    if (stats)
        stats_scope_ref(stats);
    t->stats = stats;
    return t;
}

static void append(upstream_tls_conn *t, const char *fmt, const char *a, const char *b)
{
    size_t used = strlen(t->failure);
    if (used + 1 < sizeof(t->failure))
        snprintf(t->failure + used, sizeof(t->failure) - used, fmt, a, b);
}

/* Envoy's SslSocket::drainErrorQueue: the queued errors become the
 * transport failure reason, and an error no other stat explains is
 * counted in ssl.connection_error. */
static void drain_errors(upstream_tls_conn *t)
{
    int saw_error = 0, counted = 0, verify_failed = 0, no_cert = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
            if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
                count(t, UPSTREAM_TLS_STAT_FAIL_VERIFY_NO_CERT);
                counted = no_cert = 1;
            } else if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
                counted = verify_failed = 1;
            }
        } else if (ERR_GET_LIB(e) == ERR_LIB_SYS) {
            counted = 1; /* the connection stats count socket errors */
        }
        saw_error = 1;
        if (t->failure[0] == '\0')
            append(t, "%s%s", "TLS_error:", "");
        char code[24];
        snprintf(code, sizeof(code), "%lu", e);
        const char *lib = ERR_lib_error_string(e), *reason = ERR_reason_error_string(e);
        append(t, "|%s:%s:", code, lib ? lib : "");
        /* the function name: OpenSSL 3 no longer records one */
        append(t, ":%s%s", reason ? reason : "", "");
    }
    if (!saw_error)
        return;
    if (verify_failed && t->verify_detail[0])
        append(t, ":%s%s", t->verify_detail, "");
    else if (no_cert)
        append(t, "%s%s", ":peer did not provide required client certificate", "");
    append(t, "%s%s", ":TLS_error_end", "");
    if (!counted)
        count(t, UPSTREAM_TLS_STAT_CONNECTION_ERROR);
}

/* A failure with nothing queued (the socket failed or closed): the reason
 * names what happened instead of staying empty. */
static void fail_without_queue(upstream_tls_conn *t, int ssl_error, int rc)
{
    if (t->failure[0] != '\0')
        return;
    if (ssl_error == SSL_ERROR_SYSCALL && rc < 0 && errno != 0)
        append(t, "TLS_error:|%s%s:TLS_error_end", strerror(errno), "");
    else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN)
        append(t, "TLS_error:|%s%s:TLS_error_end", "connection closed by the peer", "");
}

static void handshake_done(upstream_tls_conn *t)
{
    t->handshake_done = 1;
    count(t, UPSTREAM_TLS_STAT_HANDSHAKE);
    if (SSL_session_reused(t->ssl))
        count(t, UPSTREAM_TLS_STAT_SESSION_REUSED);
    X509 *peer = SSL_get_peer_certificate(t->ssl);
    if (peer == NULL)
        count(t, UPSTREAM_TLS_STAT_NO_CERTIFICATE);
    X509_free(peer);
    switch (SSL_version(t->ssl)) {
    case TLS1_VERSION: count(t, UPSTREAM_TLS_STAT_VERSION_TLS1_0); break;
    case TLS1_1_VERSION: count(t, UPSTREAM_TLS_STAT_VERSION_TLS1_1); break;
    case TLS1_2_VERSION: count(t, UPSTREAM_TLS_STAT_VERSION_TLS1_2); break;
    case TLS1_3_VERSION: count(t, UPSTREAM_TLS_STAT_VERSION_TLS1_3); break;
    default: break;
    }
}

upstream_tls_status upstream_tls_handshake(upstream_tls_conn *t)
{
    if (t->fatal)
        return UPSTREAM_TLS_FAILED;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        handshake_done(t);
        return UPSTREAM_TLS_DONE;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return UPSTREAM_TLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return UPSTREAM_TLS_WANT_WRITE;
    t->fatal = 1;
    drain_errors(t);
    fail_without_queue(t, e, rc);
    return UPSTREAM_TLS_FAILED;
}

/* The end of the stream: close_notify, or (BoringSSL, OpenSSL without
 * SSL_OP_IGNORE_UNEXPECTED_EOF) a FIN with nothing queued. */
static int is_eof(int ssl_error, int rc)
{
    return ssl_error == SSL_ERROR_ZERO_RETURN ||
           (ssl_error == SSL_ERROR_SYSCALL && rc == 0 && ERR_peek_error() == 0);
}

ssize_t upstream_tls_read(upstream_tls_conn *t, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len && !t->eof && !t->fatal) {
        size_t want = len - got > INT_MAX ? INT_MAX : len - got;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_read(t->ssl, (char *)buf + got, (int)want);
        if (rc > 0) {
            got += (size_t)rc;
            continue;
        }
        int e = SSL_get_error(t->ssl, rc);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (is_eof(e, rc)) {
            t->eof = 1;
            break;
        }
        /* WANT_WRITE here is a renegotiation, which is refused (as Envoy). */
        t->fatal = 1;
        drain_errors(t);
        fail_without_queue(t, e, rc);
    }
    if (got > 0)
        return (ssize_t)got; /* an end or error found meanwhile comes on the next read */
    if (t->fatal) {
        errno = ECONNRESET;
        return -1;
    }
    if (t->eof)
        return 0;
    errno = EAGAIN;
    return -1;
}

long upstream_tls_write(upstream_tls_conn *t, buffer *b)
{
    long total = 0;
    if (t->fatal) {
        errno = EPIPE;
        return -1;
    }
    while (buffer_len(b) > 0) {
        /* After WANT_WRITE OpenSSL needs at least the same bytes again:
         * the buffer only grows until a write succeeds, and
         * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets its storage move. */
        size_t want = buffer_len(b) > INT_MAX ? INT_MAX : buffer_len(b);
        ERR_clear_error();
        errno = 0;
        int rc = SSL_write(t->ssl, buffer_start(b), (int)want);
        if (rc > 0) {
            buffer_consume(b, (size_t)rc);
            total += rc;
            continue;
        }
        int e = SSL_get_error(t->ssl, rc);
        if (e == SSL_ERROR_WANT_WRITE)
            break;
        t->fatal = 1;
        drain_errors(t);
        fail_without_queue(t, e, rc);
        errno = EPIPE;
        return -1;
    }
    return total;
}

int upstream_tls_pending(const upstream_tls_conn *t)
{
    return t->eof || t->fatal || SSL_pending(t->ssl) > 0;
}

int upstream_tls_idle_ok(upstream_tls_conn *t)
{
    if (t->eof || t->fatal)
        return 0;
    char b;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_peek(t->ssl, &b, 1); /* also takes session tickets and key updates */
    if (rc > 0)
        return 0; /* bytes nobody asked for: do not reuse */
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return 1;
    if (is_eof(e, rc)) {
        t->eof = 1;
    } else {
        t->fatal = 1;
        ERR_clear_error();
    }
    return 0;
}

void upstream_tls_shutdown(upstream_tls_conn *t)
{
    if (t->fatal || t->shut_sent || !t->handshake_done)
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* close_notify, best effort on a non-blocking socket */
    ERR_clear_error();
    t->shut_sent = 1;
}

void upstream_tls_conn_free(upstream_tls_conn *t)
{
    if (t == NULL)
        return;
    upstream_tls_shutdown(t);
    SSL_free(t->ssl);
    upstream_tls_ctx_unref(t->ctx);
    if (t->stats)
        stats_scope_unref(t->stats);
    free(t);
}

const char *upstream_tls_failure_reason(const upstream_tls_conn *t)
{
    return t ? t->failure : "";
}

void upstream_tls_alpn_selected(const upstream_tls_conn *t, char *out, size_t outlen)
{
    const unsigned char *p = NULL;
    unsigned len = 0;
    if (t && t->handshake_done)
        SSL_get0_alpn_selected(t->ssl, &p, &len);
    if (outlen == 0)
        return;
    if (len >= outlen)
        len = (unsigned)outlen - 1;
    if (len)
        memcpy(out, p, len);
    out[len] = '\0';
}
