/* Unit tests: UpstreamTlsContext -> upstream_tls_ctx (the field policy,
 * each error with its exact text and path, DataSources, the counted
 * ignored fields) and real handshakes against an OpenSSL server over a
 * socketpair (certificate checks, their stats and failure reasons, SNI,
 * ALPN, session resumption). Certificates are made here, in memory. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xdsnode/bootstrap.h"
#include "xdsnode/upstream_tls.h"
#include "xdsnode/validate.h"

#define TLS_TYPE "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

/* --- certificates made in memory ------------------------------------------------ */

typedef struct {
    EVP_PKEY *key;
    X509 *cert;
} keypair;

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(k);
    return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(ext, "extension %s", value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

/* A certificate for cn signed by `ca` (self-signed when ca is NULL). */
static keypair make_cert(const char *cn, const keypair *ca, const char *san, int is_ca)
{
    static long serial = 1;
    keypair kp = {ec_key(), X509_new()};
    X509_set_version(kp.cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(kp.cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(kp.cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(kp.cert), 86400);
    X509_set_pubkey(kp.cert, kp.key);
    X509_NAME *name = X509_get_subject_name(kp.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509 *issuer = ca ? ca->cert : kp.cert;
    X509_set_issuer_name(kp.cert, X509_get_subject_name(issuer));
    add_ext(kp.cert, issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (san)
        add_ext(kp.cert, issuer, NID_subject_alt_name, san);
    cr_assert(X509_sign(kp.cert, ca ? ca->key : kp.key, EVP_sha256()) > 0);
    return kp;
}

static void keypair_free(keypair *kp)
{
    EVP_PKEY_free(kp->key);
    X509_free(kp->cert);
}

/* PEM text with newlines written as \n, for a YAML double-quoted string. */
static char *pem_escaped(const keypair *kp, int want_key)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (want_key)
        PEM_write_bio_PrivateKey(b, kp->key, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_X509(b, kp->cert);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n * 2 + 1), *o = out;
    for (long i = 0; i < n; i++) {
        if (data[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = data[i];
        }
    }
    *o = '\0';
    BIO_free(b);
    return out;
}

static keypair ca, other_ca, server, client;
static char *ca_pem, *other_ca_pem, *client_pem, *client_key_pem, *server_key_pem;

static void make_pki(void)
{
    ca = make_cert("test CA", NULL, NULL, 1);
    other_ca = make_cert("other CA", NULL, NULL, 1);
    server = make_cert("upstream.test", &ca, "DNS:upstream.test,DNS:*.wild.test,IP:127.0.0.1,URI:spiffe://td/ns/a", 0);
    client = make_cert("client", &ca, NULL, 0);
    ca_pem = pem_escaped(&ca, 0);
    other_ca_pem = pem_escaped(&other_ca, 0);
    client_pem = pem_escaped(&client, 0);
    client_key_pem = pem_escaped(&client, 1);
    server_key_pem = pem_escaped(&server, 1);
}

static void free_pki(void)
{
    keypair_free(&ca);
    keypair_free(&other_ca);
    keypair_free(&server);
    keypair_free(&client);
    free(ca_pem);
    free(other_ca_pem);
    free(client_pem);
    free(client_key_pem);
    free(server_key_pem);
}

TestSuite(upstream_tls, .init = make_pki, .fini = free_pki);

/* --- building contexts -------------------------------------------------------------- */

static pb_bootstrap *parse_cluster(const char *tls_fields, const char *cluster_extra)
{
    size_t n = strlen(tls_fields) + strlen(cluster_extra) + 512;
    char *yaml = malloc(n);
    snprintf(yaml, n,
             "static_resources: {clusters: [{name: a, %s transport_socket: {name: envoy.transport_sockets.tls, "
             "typed_config: {'@type': " TLS_TYPE ", %s}}}]}",
             cluster_extra, tls_fields);
    pb_bootstrap *b = NULL;
    char err[1024];
    int rc = bootstrap_parse_text(yaml, strlen(yaml), 0, "t.yaml", &b, err, sizeof(err));
    free(yaml);
    cr_assert_eq(rc, 0, "parse: %s", err);
    return b;
}

static int create(const char *tls_fields, upstream_tls_ctx **out, char *err, size_t errlen)
{
    pb_bootstrap *b = parse_cluster(tls_fields, "");
    int rc = upstream_tls_ctx_create(b->static_resources->clusters[0], "c", out, err, errlen);
    bootstrap_free(b);
    return rc;
}

static void expect_error(const char *tls_fields, const char *want)
{
    upstream_tls_ctx *t = NULL;
    char err[1024] = "";
    cr_assert_eq(create(tls_fields, &t, err, sizeof(err)), -1, "accepted: %s", tls_fields);
    cr_assert_null(t);
    cr_assert_str_eq(err, want);
}

static upstream_tls_ctx *expect_ok(const char *tls_fields)
{
    upstream_tls_ctx *t = NULL;
    char err[1024] = "";
    cr_assert_eq(create(tls_fields, &t, err, sizeof(err)), 0, "%s", err);
    cr_assert_not_null(t);
    return t;
}

#define P "c.transport_socket.typed_config."

Test(upstream_tls, plaintext_sockets_make_no_context)
{
    const char *yamls[] = {
        "static_resources: {clusters: [{name: a}]}",
        "static_resources: {clusters: [{name: a, transport_socket: {name: envoy.transport_sockets.raw_buffer}}]}",
    };
    for (size_t i = 0; i < 2; i++) {
        pb_bootstrap *b = NULL;
        char err[512];
        cr_assert_eq(bootstrap_parse_text(yamls[i], strlen(yamls[i]), 0, "t.yaml", &b, err, sizeof(err)), 0);
        upstream_tls_ctx *t = (upstream_tls_ctx *)1;
        cr_assert_eq(upstream_tls_ctx_create(b->static_resources->clusters[0], "c", &t, err, sizeof(err)), 0);
        cr_assert_null(t);
        cr_assert_eq(upstream_tls_socket_kind(b->static_resources->clusters[0]->transport_socket),
                     UPSTREAM_SOCKET_PLAINTEXT);
        bootstrap_free(b);
    }
}

Test(upstream_tls, sds_and_providers_are_refused)
{
    expect_error("common_tls_context: {tls_certificate_sds_secret_configs: [{name: s, sds_config: {ads: {}}}]}",
                 P "common_tls_context.tls_certificate_sds_secret_configs: unsupported: SDS secrets are not "
                   "implemented");
    expect_error("common_tls_context: {validation_context_sds_secret_config: {name: s, sds_config: {ads: {}}}}",
                 P "common_tls_context.validation_context_sds_secret_config: unsupported: SDS secrets are not "
                   "implemented");
    expect_error("common_tls_context: {combined_validation_context: {default_validation_context: {}, "
                 "validation_context_sds_secret_config: {name: s}}}",
                 P "common_tls_context.combined_validation_context: unsupported: SDS secrets are not "
                   "implemented (combined_validation_context needs one)");
    expect_error("common_tls_context: {tls_certificate_provider_instance: {instance_name: x}}",
                 P "common_tls_context.tls_certificate_provider_instance: unsupported: certificate providers "
                   "are not implemented");
}

Test(upstream_tls, security_fields_not_implemented_are_refused)
{
    expect_error("allow_renegotiation: true",
                 P "allow_renegotiation: unsupported: TLS renegotiation is not implemented (a server's "
                   "renegotiation request is refused, Envoy's default)");
    expect_error("common_tls_context: {validation_context: {crl: {inline_string: x}}}",
                 P "common_tls_context.validation_context.crl: unsupported: certificate revocation lists are "
                   "not implemented");
    expect_error("common_tls_context: {validation_context: {require_signed_certificate_timestamp: true}}",
                 P "common_tls_context.validation_context.require_signed_certificate_timestamp: unsupported: "
                   "signed certificate timestamps are not implemented");
    expect_error("common_tls_context: {validation_context: {watched_directory: {path: /tmp}}}",
                 P "common_tls_context.validation_context.watched_directory: unsupported: watched_directory "
                   "(certificate rotation) is not implemented");
    expect_error("common_tls_context: {tls_certificates: [{pkcs12: {filename: /x.p12}}]}",
                 P "common_tls_context.tls_certificates[0].pkcs12: unsupported: PKCS#12 is not implemented "
                   "(give certificate_chain and private_key in PEM)");
    expect_error("common_tls_context: {tls_certificates: [{password: {inline_string: pw}}]}",
                 P "common_tls_context.tls_certificates[0].password: unsupported: encrypted private keys are "
                   "not implemented");
    expect_error("common_tls_context: {custom_handshaker: {name: h}}",
                 P "common_tls_context.custom_handshaker: unsupported: custom handshakers are not implemented");
    expect_error("common_tls_context: {validation_context: {match_typed_subject_alt_names: "
                 "[{san_type: OTHER_NAME, matcher: {exact: x}}]}}",
                 P "common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: "
                   "unsupported: OTHER_NAME matching is not implemented");
}

Test(upstream_tls, auto_sni_and_auto_san_validation_are_refused)
{
    pb_bootstrap *b = parse_cluster("sni: x", "typed_extension_protocol_options: "
                                    "{envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {'@type': "
                                    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, "
                                    "upstream_http_protocol_options: {auto_sni: true, auto_san_validation: true}, "
                                    "explicit_http_config: {http_protocol_options: {}}}},");
    upstream_tls_ctx *t = NULL;
    char err[1024];
    cr_assert_eq(upstream_tls_ctx_create(b->static_resources->clusters[0], "c", &t, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "c.typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3."
                          "HttpProtocolOptions\"].upstream_http_protocol_options.auto_san_validation: "
                          "unsupported: per-request SAN validation is not implemented (use "
                          "match_typed_subject_alt_names in the UpstreamTlsContext)");
    bootstrap_free(b);
}

Test(upstream_tls, data_source_errors_name_the_file_and_field)
{
    expect_error("common_tls_context: {validation_context: {trusted_ca: {filename: /nonexistent/ca.pem}}}",
                 P "common_tls_context.validation_context.trusted_ca.filename: cannot read "
                   "\"/nonexistent/ca.pem\": No such file or directory");
    char path[] = "/tmp/xdsnode-tls-unit-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    char cfg[512], want[1024];
    snprintf(cfg, sizeof(cfg), "common_tls_context: {validation_context: {trusted_ca: {filename: %s}}}", path);
    snprintf(want, sizeof(want), P "common_tls_context.validation_context.trusted_ca: failed to load trusted "
             "CA certificates from \"%s\": no PEM certificate found", path);
    expect_error(cfg, want);
    snprintf(cfg, sizeof(cfg), "common_tls_context: {tls_certificates: [{certificate_chain: {filename: %s}, "
             "private_key: {filename: %s}}]}", path, path);
    upstream_tls_ctx *t = NULL;
    char err[1024];
    cr_assert_eq(create(cfg, &t, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), P "common_tls_context.tls_certificates[0].certificate_chain: failed to load "
             "certificate chain from \"%s\": ", path);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
    /* an empty file, an unset variable, an empty DataSource */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    snprintf(cfg, sizeof(cfg), "common_tls_context: {validation_context: {trusted_ca: {filename: %s}}}", path);
    snprintf(want, sizeof(want), P "common_tls_context.validation_context.trusted_ca.filename: \"%s\" is empty",
             path);
    expect_error(cfg, want);
    unlink(path);
    unsetenv("XDSNODE_TEST_NO_CA");
    expect_error("common_tls_context: {validation_context: {trusted_ca: {environment_variable: XDSNODE_TEST_NO_CA}}}",
                 P "common_tls_context.validation_context.trusted_ca.environment_variable: environment variable "
                   "\"XDSNODE_TEST_NO_CA\" is not set");
    expect_error("common_tls_context: {validation_context: {trusted_ca: {}}}",
                 P "common_tls_context.validation_context.trusted_ca: one of filename, inline_bytes, "
                   "inline_string or environment_variable is required");
}

Test(upstream_tls, client_certificate_rules)
{
    char cfg[8192];
    snprintf(cfg, sizeof(cfg), "common_tls_context: {tls_certificates: [{certificate_chain: {inline_string: \"%s\"}}]}",
             client_pem);
    expect_error(cfg, P "common_tls_context.tls_certificates[0].private_key: is required with a client "
                        "certificate (certificate_chain and private_key)");
    snprintf(cfg, sizeof(cfg), "common_tls_context: {tls_certificates: [{certificate_chain: {inline_string: \"%s\"}, "
             "private_key: {inline_string: \"%s\"}}, {}]}", client_pem, client_key_pem);
    expect_error(cfg, P "common_tls_context.tls_certificates: Multiple TLS certificates are not supported for "
                        "client contexts");
    snprintf(cfg, sizeof(cfg), "common_tls_context: {tls_certificates: [{certificate_chain: {inline_string: \"%s\"}, "
             "private_key: {inline_string: \"%s\"}}]}", client_pem, server_key_pem);
    expect_error(cfg, P "common_tls_context.tls_certificates[0].private_key: does not match the certificate chain");
    snprintf(cfg, sizeof(cfg), "common_tls_context: {tls_certificates: [{certificate_chain: {inline_string: \"%s\"}, "
             "private_key: {inline_string: \"%s\"}}]}", client_pem, client_key_pem);
    upstream_tls_ctx_unref(expect_ok(cfg));
}

Test(upstream_tls, tls_parameter_errors)
{
    expect_error("common_tls_context: {tls_params: {tls_minimum_protocol_version: TLSv1_3}}",
                 P "common_tls_context.tls_params: tls_minimum_protocol_version TLSv1_3 is above "
                   "tls_maximum_protocol_version TLS_AUTO (TLSv1_2 for upstream connections, as Envoy)");
    expect_error("common_tls_context: {tls_params: {cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256, NOT-A-CIPHER]}}",
                 P "common_tls_context.tls_params.cipher_suites: Failed to initialize cipher suites "
                   "ECDHE-RSA-AES128-GCM-SHA256:NOT-A-CIPHER. The following ciphers were rejected when tried "
                   "individually: NOT-A-CIPHER");
    expect_error("common_tls_context: {tls_params: {ecdh_curves: [P-999]}}",
                 P "common_tls_context.tls_params.ecdh_curves: Failed to initialize ECDH curves P-999");
    expect_error("common_tls_context: {alpn_protocols: [h2, '']}",
                 P "common_tls_context.alpn_protocols[1]: Invalid ALPN protocol string (1 to 255 bytes)");
    char sni[300];
    memset(sni, 'a', 256);
    sni[256] = '\0';
    char cfg[400];
    snprintf(cfg, sizeof(cfg), "sni: %s", sni);
    expect_error(cfg, P "sni: value length must be at most 255 bytes");
    /* Envoy's BoringSSL equal-preference groups are read as plain lists */
    upstream_tls_ctx_unref(expect_ok("common_tls_context: {tls_params: {tls_minimum_protocol_version: TLSv1_2, "
                                     "tls_maximum_protocol_version: TLSv1_3, cipher_suites: "
                                     "['[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]'], "
                                     "ecdh_curves: [X25519], signature_algorithms: [ECDSA+SHA256]}}"));
}

Test(upstream_tls, validation_context_errors)
{
    expect_error("common_tls_context: {validation_context: {match_typed_subject_alt_names: [{matcher: {exact: x}}]}}",
                 P "common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: must be "
                   "EMAIL, DNS, URI or IP_ADDRESS");
    expect_error("common_tls_context: {validation_context: {match_typed_subject_alt_names: [{san_type: DNS, "
                 "matcher: {exact: a}}], match_subject_alt_names: [{exact: b}]}}",
                 P "common_tls_context.validation_context.match_subject_alt_names: SAN-based verification using "
                   "both match_typed_subject_alt_names and the deprecated match_subject_alt_names is not allowed");
    expect_error("common_tls_context: {validation_context: {match_typed_subject_alt_names: [{san_type: DNS, "
                 "matcher: {prefix: ''}}]}}",
                 P "common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher: the match "
                   "pattern must not be empty");
    expect_error("common_tls_context: {validation_context: {verify_certificate_hash: [abcd]}}",
                 P "common_tls_context.validation_context.verify_certificate_hash[0]: Invalid hex-encoded SHA-256 "
                   "abcd");
    expect_error("common_tls_context: {validation_context: {match_typed_subject_alt_names: [{san_type: URI, "
                 "matcher: {safe_regex: {regex: '(('}}}]}}",
                 P "common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher.safe_regex: "
                   "invalid regex");
}

Test(upstream_tls, ignored_fields_are_counted)
{
    pb_bootstrap *b = parse_cluster("enforce_rsa_key_usage: true, common_tls_context: {key_log: {path: /tmp/k}}",
                                    "");
    char out[512];
    size_t n = validate_cluster_ignored_fields(b->static_resources->clusters[0], out, sizeof(out));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(out, "transport_socket.typed_config.enforce_rsa_key_usage, "
                          "transport_socket.typed_config.common_tls_context.key_log");
    char err[512];
    cr_assert_eq(validate_cluster(b->static_resources->clusters[0], "c", err, sizeof(err)), 0, "%s", err);
    bootstrap_free(b);
}

Test(upstream_tls, other_transport_sockets_are_refused)
{
    const char *y = "static_resources: {clusters: [{name: a, transport_socket: {name: envoy.transport_sockets.tls, "
                    "typed_config: {'@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                    "DownstreamTlsContext}}}]}";
    pb_bootstrap *b = NULL;
    char err[1024];
    cr_assert_eq(bootstrap_parse_text(y, strlen(y), 0, "t.yaml", &b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(validate_cluster(b->static_resources->clusters[0], "c", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "c.transport_socket: unsupported transport socket \"envoy.extensions.transport_sockets."
                          "tls.v3.DownstreamTlsContext\": xdsnode speaks plaintext (raw_buffer) or TLS "
                          "(envoy.transport_sockets.tls with an UpstreamTlsContext) to upstreams");
    bootstrap_free(b);
}

/* --- handshakes against a real OpenSSL server over a socketpair ---------------------------- */

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                     unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h2[] = {2, 'h', '2'};
    return SSL_select_next_proto((unsigned char **)out, outlen, h2, sizeof(h2), in, inlen) ==
                   OPENSSL_NPN_NEGOTIATED ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

static char seen_sni[256];

static int note_sni(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    snprintf(seen_sni, sizeof(seen_sni), "%s", name ? name : "");
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *server_ctx(int require_client_cert)
{
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    cr_assert_eq(SSL_CTX_use_certificate(s, server.cert), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey(s, server.key), 1);
    SSL_CTX_set_alpn_select_cb(s, select_h2, NULL);
    SSL_CTX_set_tlsext_servername_callback(s, note_sni);
    if (require_client_cert) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(s), ca.cert);
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_session_id_context(s, (const unsigned char *)"unit", 4);
    }
    return s;
}

/* Runs both sides until the client's handshake ends; returns its result
 * and the connection (the caller frees it). */
static upstream_tls_status handshake(upstream_tls_ctx *t, SSL_CTX *sctx, stats_scope *st,
                                     upstream_tls_conn **out, SSL **server_out, int fds[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    upstream_tls_conn *c = upstream_tls_conn_new(t, st, fds[0], UPSTREAM_TLS_ALPN_H2);
    cr_assert_not_null(c);
    SSL *srv = SSL_new(sctx);
    SSL_set_fd(srv, fds[1]);
    SSL_set_accept_state(srv);
    upstream_tls_status rc = UPSTREAM_TLS_WANT_WRITE;
    for (int i = 0; i < 100 && (rc == UPSTREAM_TLS_WANT_READ || rc == UPSTREAM_TLS_WANT_WRITE); i++) {
        rc = upstream_tls_handshake(c);
        if (SSL_do_handshake(srv) <= 0 && getenv("TLS_DEBUG"))
            ERR_print_errors_fp(stderr);
        ERR_clear_error();
    }
    *out = c;
    *server_out = srv;
    return rc;
}

static void finish(upstream_tls_conn *c, SSL *srv, int fds[2])
{
    upstream_tls_conn_free(c);
    SSL_free(srv);
    close(fds[0]);
    close(fds[1]);
}

static upstream_tls_status connect_once(const char *cfg, SSL_CTX *sctx, stats_scope *st, char *reason,
                                        size_t reason_len)
{
    upstream_tls_ctx *t = expect_ok(cfg);
    upstream_tls_conn *c;
    SSL *srv;
    int fds[2];
    upstream_tls_status rc = handshake(t, sctx, st, &c, &srv, fds);
    snprintf(reason, reason_len, "%s", upstream_tls_failure_reason(c));
    finish(c, srv, fds);
    upstream_tls_ctx_unref(t);
    return rc;
}

static char *ca_config(const char *pem, const char *extra)
{
    size_t n = strlen(pem) + strlen(extra) + 256;
    char *cfg = malloc(n);
    snprintf(cfg, n, "sni: upstream.test, common_tls_context: {validation_context: {trusted_ca: "
             "{inline_string: \"%s\"}%s}}", pem, extra);
    return cfg;
}

Test(upstream_tls, verification_outcomes_and_stats)
{
    SSL_CTX *sctx = server_ctx(0);
    stats_scope *st = upstream_tls_stats_scope_create("a");
    char reason[1024];

    char *cfg = ca_config(ca_pem, ", match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: upstream.test}}]");
    cr_assert_eq(connect_once(cfg, sctx, st, reason, sizeof(reason)), UPSTREAM_TLS_DONE, "%s", reason);
    cr_assert_str_eq(seen_sni, "upstream.test");
    free(cfg);

    cfg = ca_config(other_ca_pem, "");
    cr_assert_eq(connect_once(cfg, sctx, st, reason, sizeof(reason)), UPSTREAM_TLS_FAILED);
    cr_assert_str_eq(reason, "TLS_error:|167772294:SSL routines::certificate verify failed:verify cert failed: "
                             "X509_verify_cert: certificate verification error at depth 0: unable to get local "
                             "issuer certificate:TLS_error_end");
    free(cfg);

    cfg = ca_config(ca_pem, ", match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: other.test}}]");
    cr_assert_eq(connect_once(cfg, sctx, st, reason, sizeof(reason)), UPSTREAM_TLS_FAILED);
    cr_assert_str_eq(reason, "TLS_error:|167772294:SSL routines::certificate verify failed:verify cert failed: "
                             "SAN matcher, certificate SANs are [DNS:upstream.test, DNS:*.wild.test, IP:127.0.0.1, "
                             "URI:spiffe://td/ns/a]:TLS_error_end");
    free(cfg);

    cfg = ca_config(ca_pem, ", verify_certificate_hash: ['0000000000000000000000000000000000000000000000000000000000000000']");
    cr_assert_eq(connect_once(cfg, sctx, st, reason, sizeof(reason)), UPSTREAM_TLS_FAILED);
    free(cfg);

    /* ACCEPT_UNTRUSTED counts the failure and connects */
    cfg = ca_config(other_ca_pem, ", trust_chain_verification: ACCEPT_UNTRUSTED");
    cr_assert_eq(connect_once(cfg, sctx, st, reason, sizeof(reason)), UPSTREAM_TLS_DONE, "%s", reason);
    free(cfg);

    /* no validation_context: Envoy does not verify the server */
    cr_assert_eq(connect_once("sni: upstream.test", sctx, st, reason, sizeof(reason)), UPSTREAM_TLS_DONE);

    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_HANDSHAKE), 3);
    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_FAIL_VERIFY_ERROR), 2);
    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_FAIL_VERIFY_SAN), 1);
    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_FAIL_VERIFY_CERT_HASH), 1);
    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_CONNECTION_ERROR), 0);
    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_VERSION_TLS1_2), 3);
    stats_scope_unref(st);
    SSL_CTX_free(sctx);
}

Test(upstream_tls, san_matchers_follow_envoy)
{
    SSL_CTX *sctx = server_ctx(0);
    char reason[1024];
    struct {
        const char *matchers;
        upstream_tls_status want;
    } cases[] = {
        {"[{san_type: DNS, matcher: {exact: a.wild.test}}]", UPSTREAM_TLS_DONE},     /* wildcard SAN */
        {"[{san_type: DNS, matcher: {exact: a.b.wild.test}}]", UPSTREAM_TLS_FAILED}, /* one label only */
        {"[{san_type: DNS, matcher: {suffix: .test}}]", UPSTREAM_TLS_DONE},
        {"[{san_type: DNS, matcher: {prefix: UPSTREAM., ignore_case: true}}]", UPSTREAM_TLS_DONE},
        {"[{san_type: DNS, matcher: {prefix: UPSTREAM.}}]", UPSTREAM_TLS_FAILED},
        {"[{san_type: URI, matcher: {prefix: 'spiffe://td/'}}]", UPSTREAM_TLS_DONE},
        {"[{san_type: URI, matcher: {safe_regex: {regex: 'spiffe://td/ns/[a-z]+'}}}]", UPSTREAM_TLS_DONE},
        {"[{san_type: URI, matcher: {exact: upstream.test}}]", UPSTREAM_TLS_FAILED}, /* type matters */
        {"[{san_type: IP_ADDRESS, matcher: {exact: 127.0.0.1}}]", UPSTREAM_TLS_DONE},
        {"[{san_type: DNS, matcher: {contains: stream}}]", UPSTREAM_TLS_DONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char extra[256];
        snprintf(extra, sizeof(extra), ", match_typed_subject_alt_names: %s", cases[i].matchers);
        char *cfg = ca_config(ca_pem, extra);
        cr_assert_eq(connect_once(cfg, sctx, NULL, reason, sizeof(reason)), cases[i].want, "%s: %s",
                     cases[i].matchers, reason);
        free(cfg);
    }
    /* the deprecated form matches any SAN type */
    char *cfg = ca_config(ca_pem, ", match_subject_alt_names: [{exact: 127.0.0.1}]");
    cr_assert_eq(connect_once(cfg, sctx, NULL, reason, sizeof(reason)), UPSTREAM_TLS_DONE, "%s", reason);
    free(cfg);
    SSL_CTX_free(sctx);
}

/* Sends one byte each way, so post-handshake messages are read. */
static void exchange(upstream_tls_conn *c, SSL *srv)
{
    buffer b;
    buffer_init(&b);
    buffer_append(&b, "x", 1);
    cr_assert_eq(upstream_tls_write(c, &b), 1);
    buffer_free(&b);
    char got;
    cr_assert_eq(SSL_read(srv, &got, 1), 1);
    cr_assert_eq(SSL_write(srv, "y", 1), 1);
    ssize_t n = upstream_tls_read(c, &got, 1);
    cr_assert_eq(n, 1);
    cr_assert_eq(got, 'y');
}

Test(upstream_tls, alpn_mtls_and_session_resumption)
{
    SSL_CTX *sctx = server_ctx(1);
    stats_scope *st = upstream_tls_stats_scope_create("a");
    char reason[1024];
    /* without a client certificate the server refuses the handshake */
    char *cfg = ca_config(ca_pem, "");
    cr_assert_eq(connect_once(cfg, sctx, st, reason, sizeof(reason)), UPSTREAM_TLS_FAILED);
    cr_assert(strstr(reason, "TLS_error:|") == reason && strstr(reason, ":TLS_error_end"), "%s", reason);
    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_CONNECTION_ERROR), 1);
    free(cfg);

    size_t n = strlen(ca_pem) + strlen(client_pem) + strlen(client_key_pem) + 512;
    cfg = malloc(n);
    snprintf(cfg, n, "sni: upstream.test, common_tls_context: {tls_certificates: [{certificate_chain: "
             "{inline_string: \"%s\"}, private_key: {inline_string: \"%s\"}}], validation_context: {trusted_ca: "
             "{inline_string: \"%s\"}}}", client_pem, client_key_pem, ca_pem);
    upstream_tls_ctx *t = expect_ok(cfg);
    free(cfg);
    for (int round = 0; round < 2; round++) {
        upstream_tls_conn *c;
        SSL *srv;
        int fds[2];
        cr_assert_eq(handshake(t, sctx, st, &c, &srv, fds), UPSTREAM_TLS_DONE, "%s",
                     upstream_tls_failure_reason(c));
        char alpn[16];
        upstream_tls_alpn_selected(c, alpn, sizeof(alpn));
        cr_assert_str_eq(alpn, "h2");
        cr_assert_eq(SSL_session_reused(srv), round == 1, "round %d", round);
        exchange(c, srv);
        finish(c, srv, fds); /* close_notify keeps the session resumable */
    }
    cr_assert_eq(stats_get(st, UPSTREAM_TLS_STAT_SESSION_REUSED), 1);
    upstream_tls_ctx_unref(t);

    /* max_session_keys: 0 disables resumption */
    n = strlen(ca_pem) + strlen(client_pem) + strlen(client_key_pem) + 512;
    cfg = malloc(n);
    snprintf(cfg, n, "max_session_keys: 0, common_tls_context: {tls_certificates: [{certificate_chain: "
             "{inline_string: \"%s\"}, private_key: {inline_string: \"%s\"}}]}", client_pem, client_key_pem);
    t = expect_ok(cfg);
    free(cfg);
    for (int round = 0; round < 2; round++) {
        upstream_tls_conn *c;
        SSL *srv;
        int fds[2];
        cr_assert_eq(handshake(t, sctx, st, &c, &srv, fds), UPSTREAM_TLS_DONE);
        cr_assert_eq(SSL_session_reused(srv), 0);
        exchange(c, srv);
        finish(c, srv, fds);
    }
    upstream_tls_ctx_unref(t);
    stats_scope_unref(st);
    SSL_CTX_free(sctx);
}
