/*
 * upstream_tls_internal.h: what upstream_tls.c (the context: config,
 * SSL_CTX, certificate verification, session cache) and upstream_tls_conn.c
 * (one SSL per upstream socket) share. Threads as in upstream_tls.h.
 */
#ifndef XDSNODE_UPSTREAM_TLS_INTERNAL_H
#define XDSNODE_UPSTREAM_TLS_INTERNAL_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>

#include "xdsnode/upstream_tls.h"

/* One subject alt name matcher (SubjectAltNameMatcher, or one of the four
 * a deprecated match_subject_alt_names entry stands for). */
typedef enum { SAN_EXACT, SAN_PREFIX, SAN_SUFFIX, SAN_CONTAINS, SAN_REGEX } san_match_kind;

typedef struct {
    int gen_type;          /* GEN_DNS, GEN_URI, GEN_EMAIL, GEN_IPADD */
    san_match_kind kind;
    int ignore_case;
    char *value;
    regex_t re;            /* SAN_REGEX */
} san_matcher;

struct upstream_tls_ctx {
    _Atomic int refs;
    SSL_CTX *ssl_ctx;
    char *sni;             /* "" for none */
    int alpn_configured;   /* alpn_protocols set: the pools' fallback is not used */
    /* certificate validation (validation_context) */
    int verify;            /* something to check: the verify callback acts */
    int verify_trusted_ca; /* trusted_ca or system_root_certs: chain verification */
    int accept_untrusted;  /* trust_chain_verification: ACCEPT_UNTRUSTED */
    san_matcher *sans;
    size_t n_sans;
    unsigned char (*cert_hashes)[32]; /* verify_certificate_hash, SHA-256 */
    size_t n_cert_hashes;
    unsigned char (*spki_hashes)[32]; /* verify_certificate_spki, SHA-256 */
    size_t n_spki_hashes;
    /* session resumption: newest first, at most max_session_keys */
    pthread_mutex_t session_mu;
    SSL_SESSION **sessions;
    size_t n_sessions, max_session_keys;
};

struct upstream_tls_conn {
    SSL *ssl;
    upstream_tls_ctx *ctx;  /* one reference */
    stats_scope *stats;     /* "cluster.<name>.ssl.", one reference */
    int fatal;              /* a TLS or socket error: no close_notify, no more I/O */
    int eof;                /* close_notify or EOF seen: reads return 0 */
    int shut_sent;          /* close_notify sent */
    int handshake_done;
    char verify_detail[384];/* why the verify callback refused the certificate */
    char failure[768];      /* Envoy's transport failure reason */
};

/* The context's SSL_CTX hands a new connection its most recent session
 * (a TLS 1.3 one is used once, as Envoy). */
void upstream_tls_ctx_resume(upstream_tls_ctx *t, SSL *ssl);

#endif
