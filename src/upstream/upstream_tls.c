/* upstream_tls.c: a cluster's UpstreamTlsContext -> upstream_tls_ctx: field
 * policy, DataSources, SSL_CTX, certificate verification and the session
 * cache (upstream_tls.h). */
#include "upstream_tls_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "xdsnode/cluster_config.h"
#include "xdsnode/strbuf.h"
#include "xdsnode/validate.h"

typedef Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext pb_upstream_tls;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext pb_common_tls;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters pb_tls_params;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate pb_tls_cert;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext pb_cvc;
typedef Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher pb_san;
typedef Envoy__Config__Core__V3__DataSource pb_data_source;
typedef Envoy__Type__Matcher__V3__StringMatcher pb_string_matcher;
typedef Envoy__Config__Core__V3__TransportSocket pb_transport_socket;

/* TLS protocol versions (wire values; OpenSSL's and BoringSSL's
 * TLS1_x_VERSION). */
#define TLS_V1_0 0x0301
#define TLS_V1_1 0x0302
#define TLS_V1_2 0x0303
#define TLS_V1_3 0x0304
/* ALPN protocol names are 1..255 bytes (RFC 7301). */
#define ALPN_MAX_NAME 255
/* UpstreamTlsContext.sni: at most 255 bytes (its validation rule). */
#define SNI_MAX_BYTES 255
/* CertificateValidationContext.max_verify_depth: at most 100. */
#define MAX_VERIFY_DEPTH_LIMIT 100
#define SHA256_LEN 32

#define WHY_SDS "unsupported: SDS secrets are not implemented"
#define WHY_PROVIDER "unsupported: certificate providers are not implemented"
#define WHY_ROTATION "unsupported: watched_directory (certificate rotation) is not implemented"

/* --- stats ---------------------------------------------------------------- */

#define STAT_DEF(id, name, type) [UPSTREAM_TLS_STAT_##id] = {name, type},
const stat_def upstream_tls_stat_defs[UPSTREAM_TLS_STAT_COUNT] = {UPSTREAM_TLS_STATS(STAT_DEF)};
#undef STAT_DEF

stats_scope *upstream_tls_stats_scope_create(const char *stat_name)
{
    char *clean = stats_sanitize_name(stat_name);
    if (clean == NULL)
        return NULL;
    size_t len = strlen("cluster.") + strlen(clean) + strlen(".ssl.") + 1;
    char *prefix = malloc(len);
    stats_scope *s = NULL;
    if (prefix != NULL) {
        snprintf(prefix, len, "cluster.%s.ssl.", clean);
        s = stats_scope_create(prefix, upstream_tls_stat_defs, UPSTREAM_TLS_STAT_COUNT, "cluster.ssl.",
                               "envoy_cluster_name", clean);
    }
    free(prefix);
    free(clean);
    return s;
}

/* --- errors ------------------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *path, const char *field, const char *why)
{
    snprintf(err, errlen, "%s%s%s: %s", path, (*path && *field) ? "." : "", field, why);
    return -1;
}

/* The last error OpenSSL queued on this thread (the queue is emptied). */
static void crypto_error(char *buf, size_t len)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last == 0) {
        snprintf(buf, len, "unknown error");
        return;
    }
    const char *reason = ERR_reason_error_string(last);
    snprintf(buf, len, "%s", reason ? reason : "unknown error");
}

/* --- the socket and its typed config ----------------------------------------------- */

static const char *any_type_name(const pb_any *a)
{
    const char *slash = strrchr(a->type_url, '/');
    return slash ? slash + 1 : a->type_url;
}

upstream_socket_kind upstream_tls_socket_kind(const pb_transport_socket *ts)
{
    if (ts == NULL)
        return UPSTREAM_SOCKET_PLAINTEXT;
    const char *type = "";
    if (ts->config_type_case == ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG)
        type = any_type_name(ts->typed_config);
    if (strcmp(type, RAW_BUFFER_SOCKET_TYPE) == 0 ||
        (type[0] == '\0' && (ts->name[0] == '\0' || strcmp(ts->name, RAW_BUFFER_SOCKET_NAME) == 0)))
        return UPSTREAM_SOCKET_PLAINTEXT;
    if (strcmp(type, UPSTREAM_TLS_CONTEXT_TYPE) == 0 ||
        (type[0] == '\0' && strcmp(ts->name, UPSTREAM_TLS_SOCKET_NAME) == 0))
        return UPSTREAM_SOCKET_TLS;
    return UPSTREAM_SOCKET_OTHER;
}

/* Decodes the cluster's UpstreamTlsContext (an absent typed_config is an
 * empty one). Returns 1 with *out, 0 for plaintext, -1 with err. */
static int decode_context(const pb_cluster *c, const char *path, pb_upstream_tls **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    const pb_transport_socket *ts = c->transport_socket;
    switch (upstream_tls_socket_kind(ts)) {
    case UPSTREAM_SOCKET_PLAINTEXT:
        return 0;
    case UPSTREAM_SOCKET_OTHER:
        return fail(err, errlen, path, "transport_socket", "unsupported transport socket");
    default:
        break;
    }
    const uint8_t *data = NULL;
    size_t len = 0;
    if (ts->config_type_case == ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG) {
        data = ts->typed_config->value.data;
        len = ts->typed_config->value.len;
    }
    *out = envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__unpack(NULL, len, data);
    if (*out == NULL) {
        char p[512];
        snprintf(p, sizeof(p), "%s%stransport_socket", path, *path ? "." : "");
        return fail(err, errlen, p, "typed_config", "malformed " UPSTREAM_TLS_CONTEXT_TYPE);
    }
    return 1;
}

/* --- field policy --------------------------------------------------------------- */

/* A field xdsnode does not act on: rejected with `why`, or (why NULL)
 * kept and counted as ignored because its absence changes no security
 * property. */
typedef struct {
    const char *field;
    const char *why;
} field_rule;

static const field_rule upstream_rules[] = {
    {"allow_renegotiation", "unsupported: TLS renegotiation is not implemented (a server's "
                            "renegotiation request is refused, Envoy's default)"},
    /* OpenSSL builds of Envoy ignore it too; OpenSSL checks a server
     * certificate's key usage while verifying the chain. */
    {"enforce_rsa_key_usage", NULL},
};

static const field_rule common_rules[] = {
    {"tls_certificate_sds_secret_configs", WHY_SDS},
    {"validation_context_sds_secret_config", WHY_SDS},
    {"combined_validation_context", WHY_SDS " (combined_validation_context needs one)"},
    {"tls_certificate_provider_instance", WHY_PROVIDER},
    {"tls_certificate_certificate_provider", WHY_PROVIDER},
    {"tls_certificate_certificate_provider_instance", WHY_PROVIDER},
    {"validation_context_certificate_provider", WHY_PROVIDER},
    {"validation_context_certificate_provider_instance", WHY_PROVIDER},
    {"custom_handshaker", "unsupported: custom handshakers are not implemented"},
    {"key_log", NULL}, /* no key log file is written */
};

static const field_rule cert_rules[] = {
    {"pkcs12", "unsupported: PKCS#12 is not implemented (give certificate_chain and private_key "
               "in PEM)"},
    {"watched_directory", WHY_ROTATION},
    {"private_key_provider", "unsupported: private key providers are not implemented"},
    {"password", "unsupported: encrypted private keys are not implemented"},
    /* server-side features, meaningless for a client certificate */
    {"ocsp_staple", NULL},
    {"signed_certificate_timestamp", NULL},
};

static const field_rule cvc_rules[] = {
    {"ca_certificate_provider_instance", WHY_PROVIDER},
    {"watched_directory", WHY_ROTATION},
    {"crl", "unsupported: certificate revocation lists are not implemented"},
    {"custom_validator_config", "unsupported: custom certificate validators are not implemented"},
    {"only_verify_leaf_cert_crl", NULL}, /* meaningful only with a crl */
};

static const field_rule data_source_rules[] = {
    {"watched_directory", WHY_ROTATION},
};

#define N_RULES(a) (sizeof(a) / sizeof((a)[0]))

/* Rejects unknown fields (a newer field may change security behaviour)
 * and every set field whose rule rejects it. */
static int check_rules(const ProtobufCMessage *m, const char *path, const field_rule *rules,
                       size_t n, char *err, size_t errlen)
{
    if (m->n_unknown_fields > 0) {
        char why[200];
        snprintf(why, sizeof(why), "unsupported: unknown field number %u of %s", m->unknown_fields[0].tag,
                 m->descriptor->name);
        return fail(err, errlen, path, "", why);
    }
    for (size_t i = 0; i < n; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(m->descriptor, rules[i].field);
        if (f && rules[i].why && validate_field_is_set(m, f))
            return fail(err, errlen, path, rules[i].field, rules[i].why);
    }
    return 0;
}

/* Appends the set fields whose rule ignores them ("PATH.field"). */
static size_t note_ignored(const ProtobufCMessage *m, const char *path, const field_rule *rules,
                           size_t n, char *out, size_t outlen, size_t *used)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(m->descriptor, rules[i].field);
        if (f == NULL || rules[i].why || !validate_field_is_set(m, f))
            continue;
        count++;
        if (*used < outlen) {
            int w = snprintf(out + *used, outlen - *used, "%s%s.%s", *used ? ", " : "", path,
                             rules[i].field);
            *used += w > 0 ? (size_t)w : 0;
            if (*used > outlen)
                *used = outlen;
        }
    }
    return count;
}

size_t upstream_tls_ignored_fields(const pb_cluster *c, char *out, size_t outlen, size_t *used)
{
    pb_upstream_tls *u;
    char err[8];
    if (decode_context(c, "", &u, err, sizeof(err)) != 1)
        return 0;
    const char *base = "transport_socket.typed_config";
    size_t n = note_ignored(&u->base, base, upstream_rules, N_RULES(upstream_rules), out, outlen, used);
    const pb_common_tls *ct = u->common_tls_context;
    char p[256];
    if (ct) {
        snprintf(p, sizeof(p), "%s.common_tls_context", base);
        n += note_ignored(&ct->base, p, common_rules, N_RULES(common_rules), out, outlen, used);
        for (size_t i = 0; i < ct->n_tls_certificates; i++) {
            snprintf(p, sizeof(p), "%s.common_tls_context.tls_certificates[%zu]", base, i);
            n += note_ignored(&ct->tls_certificates[i]->base, p, cert_rules, N_RULES(cert_rules), out,
                              outlen, used);
        }
        if (ct->validation_context_type_case ==
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT) {
            snprintf(p, sizeof(p), "%s.common_tls_context.validation_context", base);
            n += note_ignored(&ct->validation_context->base, p, cvc_rules, N_RULES(cvc_rules), out,
                              outlen, used);
        }
    }
    protobuf_c_message_free_unpacked(&u->base, NULL);
    return n;
}

/* --- DataSource --------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
    char source[320]; /* for messages: the file name, or the inline field */
} loaded;

static int read_file(const char *name, const char *path, loaded *out, char *err, size_t errlen)
{
    char why[512];
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, sizeof(why), "cannot read \"%s\": %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return fail(err, errlen, path, "filename", why);
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > UPSTREAM_TLS_MAX_DATA_SOURCE_BYTES) {
        snprintf(why, sizeof(why), S_ISREG(st.st_mode) ? "\"%s\" is larger than %u bytes"
                                                       : "\"%s\" is not a regular file",
                 name, UPSTREAM_TLS_MAX_DATA_SOURCE_BYTES);
        close(fd);
        return fail(err, errlen, path, "filename", why);
    }
    out->data = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (out->data && got < (size_t)st.st_size) {
        ssize_t n = read(fd, out->data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    int read_errno = errno;
    close(fd);
    if (out->data == NULL || got != (size_t)st.st_size) {
        snprintf(why, sizeof(why), "cannot read \"%s\": %s", name,
                 out->data ? strerror(read_errno) : "out of memory");
        free(out->data);
        out->data = NULL;
        return fail(err, errlen, path, "filename", why);
    }
    out->len = got;
    snprintf(out->source, sizeof(out->source), "\"%s\"", name);
    return 0;
}

/* Reads a DataSource (filename, inline_bytes, inline_string,
 * environment_variable). An empty one is an error: an empty trusted_ca
 * would silently mean "do not verify". */
static int load_data_source(const pb_data_source *d, const char *path, loaded *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (check_rules(&d->base, path, data_source_rules, N_RULES(data_source_rules), err, errlen) != 0)
        return -1;
    const char *src = NULL;
    size_t len = 0;
    char why[512];
    switch (d->specifier_case) {
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
        if (d->filename[0] == '\0')
            return fail(err, errlen, path, "filename", "must not be empty");
        if (read_file(d->filename, path, out, err, errlen) != 0)
            return -1;
        if (out->len == 0) {
            free(out->data);
            out->data = NULL;
            snprintf(why, sizeof(why), "\"%s\" is empty", d->filename);
            return fail(err, errlen, path, "filename", why);
        }
        return 0;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
        src = (const char *)d->inline_bytes.data;
        len = d->inline_bytes.len;
        snprintf(out->source, sizeof(out->source), "inline_bytes");
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
        src = d->inline_string;
        len = strlen(src);
        snprintf(out->source, sizeof(out->source), "inline_string");
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE:
        src = getenv(d->environment_variable);
        if (src == NULL) {
            snprintf(why, sizeof(why), "environment variable \"%s\" is not set", d->environment_variable);
            return fail(err, errlen, path, "environment_variable", why);
        }
        len = strlen(src);
        snprintf(out->source, sizeof(out->source), "environment variable \"%s\"",
                 d->environment_variable);
        break;
    default:
        return fail(err, errlen, path, "",
                    "one of filename, inline_bytes, inline_string or environment_variable is required");
    }
    if (len == 0) {
        snprintf(why, sizeof(why), "%s is empty", out->source);
        return fail(err, errlen, path, "", why);
    }
    out->data = malloc(len + 1);
    if (out->data == NULL)
        return fail(err, errlen, path, "", "out of memory");
    memcpy(out->data, src, len);
    out->data[len] = '\0';
    out->len = len;
    return 0;
}

static void loaded_free(loaded *l)
{
    if (l->data) {
        OPENSSL_cleanse(l->data, l->len); /* may be a private key */
        free(l->data);
    }
    l->data = NULL;
}

/* --- certificates ------------------------------------------------------------------- */

/* trusted_ca: every certificate (and CRL, as Envoy) of a PEM bundle into
 * the context's store. */
static int load_trusted_ca(upstream_tls_ctx *t, const pb_data_source *d, const char *path, char *err,
                           size_t errlen)
{
    loaded l;
    if (load_data_source(d, path, &l, err, errlen) != 0)
        return -1;
    X509_STORE *store = SSL_CTX_get_cert_store(t->ssl_ctx);
    BIO *bio = BIO_new_mem_buf(l.data, (int)l.len);
    STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
    int certs = 0, crls = 0;
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1)
            certs++;
        if (info->crl && X509_STORE_add_crl(store, info->crl) == 1)
            crls++;
    }
    char why[640], ossl[200] = "no PEM certificate found";
    if (infos == NULL)
        crypto_error(ossl, sizeof(ossl));
    ERR_clear_error();
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    if (certs == 0) {
        snprintf(why, sizeof(why), "failed to load trusted CA certificates from %s: %s", l.source, ossl);
        loaded_free(&l);
        return fail(err, errlen, path, "", why);
    }
    loaded_free(&l);
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    if (crls > 0)
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return 0;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0; /* encrypted keys are rejected, never prompted for */
}

static int load_chain(upstream_tls_ctx *t, const pb_data_source *d, const char *path, char *err,
                      size_t errlen)
{
    loaded l;
    if (load_data_source(d, path, &l, err, errlen) != 0)
        return -1;
    BIO *bio = BIO_new_mem_buf(l.data, (int)l.len);
    X509 *leaf = bio ? PEM_read_bio_X509_AUX(bio, NULL, no_password, NULL) : NULL;
    int ok = leaf != NULL && SSL_CTX_use_certificate(t->ssl_ctx, leaf) == 1;
    X509_free(leaf);
    while (ok) {
        X509 *ca = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        if (ca == NULL)
            break;
        ok = SSL_CTX_add1_chain_cert(t->ssl_ctx, ca) == 1;
        X509_free(ca);
    }
    unsigned long last = ERR_peek_last_error();
    if (ok && ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)
        ERR_clear_error(); /* the end of the PEM text */
    else if (ok && last != 0)
        ok = 0;
    BIO_free(bio);
    if (!ok) {
        char why[640], ossl[200];
        crypto_error(ossl, sizeof(ossl));
        snprintf(why, sizeof(why), "failed to load certificate chain from %s: %s", l.source, ossl);
        loaded_free(&l);
        return fail(err, errlen, path, "", why);
    }
    loaded_free(&l);
    return 0;
}

static int load_private_key(upstream_tls_ctx *t, const pb_data_source *d, const char *path, char *err,
                            size_t errlen)
{
    loaded l;
    if (load_data_source(d, path, &l, err, errlen) != 0)
        return -1;
    BIO *bio = BIO_new_mem_buf(l.data, (int)l.len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
    int ok = key != NULL && SSL_CTX_use_PrivateKey(t->ssl_ctx, key) == 1;
    int mismatch = key != NULL && !ok;
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (mismatch) {
        ERR_clear_error();
        loaded_free(&l);
        return fail(err, errlen, path, "", "does not match the certificate chain");
    }
    if (!ok) {
        char why[640], ossl[200];
        crypto_error(ossl, sizeof(ossl));
        snprintf(why, sizeof(why), "failed to load private key from %s: %s", l.source, ossl);
        loaded_free(&l);
        return fail(err, errlen, path, "", why);
    }
    loaded_free(&l);
    ERR_clear_error();
    return 0;
}

static int load_tls_certificates(upstream_tls_ctx *t, const pb_common_tls *ct, const char *path,
                                 char *err, size_t errlen)
{
    if (ct->n_tls_certificates == 0)
        return 0;
    if (ct->n_tls_certificates > 1)
        return fail(err, errlen, path, "tls_certificates",
                    "Multiple TLS certificates are not supported for client contexts");
    const pb_tls_cert *tc = ct->tls_certificates[0];
    char p[600], sub[700];
    snprintf(p, sizeof(p), "%s.tls_certificates[0]", path);
    if (check_rules(&tc->base, p, cert_rules, N_RULES(cert_rules), err, errlen) != 0)
        return -1;
    if (tc->certificate_chain == NULL && tc->private_key == NULL)
        return 0; /* an empty entry: no client certificate (Envoy skips it) */
    if (tc->certificate_chain == NULL || tc->private_key == NULL)
        return fail(err, errlen, p, tc->certificate_chain ? "private_key" : "certificate_chain",
                    "is required with a client certificate (certificate_chain and private_key)");
    snprintf(sub, sizeof(sub), "%s.certificate_chain", p);
    if (load_chain(t, tc->certificate_chain, sub, err, errlen) != 0)
        return -1;
    snprintf(sub, sizeof(sub), "%s.private_key", p);
    if (load_private_key(t, tc->private_key, sub, err, errlen) != 0)
        return -1;
    if (SSL_CTX_check_private_key(t->ssl_ctx) != 1) {
        ERR_clear_error();
        return fail(err, errlen, p, "private_key", "does not match the certificate chain");
    }
    return 0;
}

/* --- TLS parameters -------------------------------------------------------------------- */

static const char *const version_names[] = {"TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"};

static int tls_version(int proto_enum, int dflt)
{
    switch (proto_enum) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_0: return TLS_V1_0;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_1: return TLS_V1_1;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2: return TLS_V1_2;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3: return TLS_V1_3;
    default: return dflt;
    }
}

static const char *version_name(int proto_enum)
{
    return proto_enum >= 0 && proto_enum < 5 ? version_names[proto_enum] : "?";
}

/* "a:b:[c|d]" from a repeated field; Envoy's BoringSSL equal-preference
 * groups "[c|d]" become plain entries (OpenSSL has no such groups). */
static char *join_names(char **names, size_t n, int flatten_groups)
{
    strbuf b;
    strbuf_init(&b);
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        if (i)
            strbuf_append(&b, ":", 1);
        for (; *s; s++) {
            if (flatten_groups && (*s == '[' || *s == ']'))
                continue;
            char ch = flatten_groups && *s == '|' ? ':' : *s;
            strbuf_append(&b, &ch, 1);
        }
    }
    return strbuf_take(&b, NULL);
}

/* SSL_CTX_set_cipher_list ignores names it does not know as long as one
 * is left; Envoy refuses them, so each is tried alone first. */
static int apply_ciphers(upstream_tls_ctx *t, const pb_tls_params *tp, const char *path, char *err,
                         size_t errlen)
{
    if (tp == NULL || tp->n_cipher_suites == 0)
        return SSL_CTX_set_cipher_list(t->ssl_ctx, UPSTREAM_TLS_DEFAULT_CIPHER_SUITES) == 1
                   ? 0 : fail(err, errlen, path, "", "cannot set the default cipher suites");
    char *all = join_names(tp->cipher_suites, tp->n_cipher_suites, 1);
    if (all == NULL)
        return fail(err, errlen, path, "", "out of memory");
    strbuf bad;
    strbuf_init(&bad);
    char *save = NULL, *copy = strdup(all);
    for (char *name = copy ? strtok_r(copy, ":", &save) : NULL; name; name = strtok_r(NULL, ":", &save)) {
        if (name[0] == '!' || name[0] == '-' || name[0] == '+')
            continue; /* cipher string operators select nothing alone */
        if (SSL_CTX_set_cipher_list(t->ssl_ctx, name) != 1)
            strbuf_printf(&bad, "%s%s", bad.len ? ":" : "", name);
    }
    free(copy);
    ERR_clear_error();
    int rc = 0;
    if (bad.len > 0 || SSL_CTX_set_cipher_list(t->ssl_ctx, all) != 1) {
        char why[1024];
        snprintf(why, sizeof(why),
                 "Failed to initialize cipher suites %s. The following ciphers were rejected when "
                 "tried individually: %s", all, bad.len ? bad.data : "(none)");
        rc = fail(err, errlen, path, "cipher_suites", why);
    }
    ERR_clear_error();
    strbuf_free(&bad);
    free(all);
    return rc;
}

static int apply_tls_params(upstream_tls_ctx *t, const pb_tls_params *tp, const char *path, char *err,
                            size_t errlen)
{
    char p[600];
    snprintf(p, sizeof(p), "%s.tls_params", path);
    if (tp && check_rules(&tp->base, p, NULL, 0, err, errlen) != 0)
        return -1;
    int min_e = tp ? (int)tp->tls_minimum_protocol_version : 0;
    int max_e = tp ? (int)tp->tls_maximum_protocol_version : 0;
    int min_v = tls_version(min_e, UPSTREAM_TLS_DEFAULT_MIN_VERSION);
    int max_v = tls_version(max_e, UPSTREAM_TLS_DEFAULT_MAX_VERSION);
    if (min_v > max_v) {
        char why[300];
        snprintf(why, sizeof(why), "tls_minimum_protocol_version %s is above tls_maximum_protocol_version "
                 "%s%s", version_name(min_e), version_name(max_e),
                 max_e == 0 ? " (TLSv1_2 for upstream connections, as Envoy)" : "");
        return fail(err, errlen, p, "", why);
    }
    if (SSL_CTX_set_min_proto_version(t->ssl_ctx, min_v) != 1 ||
        SSL_CTX_set_max_proto_version(t->ssl_ctx, max_v) != 1) {
        ERR_clear_error();
        return fail(err, errlen, p, "", "unsupported TLS protocol version range");
    }
    if (apply_ciphers(t, tp, p, err, errlen) != 0)
        return -1;
    char *curves = tp && tp->n_ecdh_curves ? join_names(tp->ecdh_curves, tp->n_ecdh_curves, 0)
                                           : strdup(UPSTREAM_TLS_DEFAULT_CURVES);
    int ok = curves && SSL_CTX_set1_curves_list(t->ssl_ctx, curves) == 1;
    if (!ok) {
        char why[600];
        snprintf(why, sizeof(why), "Failed to initialize ECDH curves %s", curves ? curves : "");
        free(curves);
        ERR_clear_error();
        return fail(err, errlen, p, "ecdh_curves", why);
    }
    free(curves);
    if (tp && tp->n_signature_algorithms) {
        char *algs = join_names(tp->signature_algorithms, tp->n_signature_algorithms, 0);
        ok = algs && SSL_CTX_set1_sigalgs_list(t->ssl_ctx, algs) == 1;
        if (!ok) {
            char why[600];
            snprintf(why, sizeof(why), "Failed to initialize TLS signature algorithms %s", algs ? algs : "");
            free(algs);
            ERR_clear_error();
            return fail(err, errlen, p, "signature_algorithms", why);
        }
        free(algs);
    }
    return 0;
}

static int apply_alpn(upstream_tls_ctx *t, const pb_common_tls *ct, const char *path, char *err,
                      size_t errlen)
{
    if (ct->n_alpn_protocols == 0)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < ct->n_alpn_protocols; i++) {
        size_t n = strlen(ct->alpn_protocols[i]);
        if (n == 0 || n > ALPN_MAX_NAME) {
            char p[640];
            snprintf(p, sizeof(p), "%s.alpn_protocols[%zu]", path, i);
            return fail(err, errlen, p, "", "Invalid ALPN protocol string (1 to 255 bytes)");
        }
        len += 1 + n;
    }
    unsigned char *wire = malloc(len);
    if (wire == NULL)
        return fail(err, errlen, path, "", "out of memory");
    size_t at = 0;
    for (size_t i = 0; i < ct->n_alpn_protocols; i++) {
        size_t n = strlen(ct->alpn_protocols[i]);
        wire[at++] = (unsigned char)n;
        memcpy(wire + at, ct->alpn_protocols[i], n);
        at += n;
    }
    int rc = SSL_CTX_set_alpn_protos(t->ssl_ctx, wire, (unsigned)len); /* 0 is success */
    free(wire);
    if (rc != 0)
        return fail(err, errlen, path, "alpn_protocols", "cannot set the ALPN protocols");
    t->alpn_configured = 1;
    return 0;
}

/* --- subject alt names, certificate hashes ------------------------------------------------- */

static int add_san(upstream_tls_ctx *t, int gen_type, const pb_string_matcher *m, const char *path,
                   char *err, size_t errlen)
{
    san_matcher s = {.gen_type = gen_type, .ignore_case = m->ignore_case ? 1 : 0};
    const char *v = NULL;
    switch (m->match_pattern_case) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        s.kind = SAN_EXACT;
        v = m->exact;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        s.kind = SAN_PREFIX;
        v = m->prefix;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        s.kind = SAN_SUFFIX;
        v = m->suffix;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
        s.kind = SAN_CONTAINS;
        v = m->contains;
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
        s.kind = SAN_REGEX;
        v = m->safe_regex ? m->safe_regex->regex : "";
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CUSTOM:
        return fail(err, errlen, path, "custom", "unsupported: custom string matchers are not implemented");
    default:
        return fail(err, errlen, path, "", "one of exact, prefix, suffix, contains or safe_regex is required");
    }
    if (s.kind != SAN_EXACT && v[0] == '\0')
        return fail(err, errlen, path, "", "the match pattern must not be empty");
    size_t vlen = strlen(v);
    s.value = malloc(vlen + 5);
    if (s.value == NULL)
        return fail(err, errlen, path, "", "out of memory");
    if (s.kind == SAN_REGEX) {
        snprintf(s.value, vlen + 5, "^(%s)$", v); /* RE2 full match, as POSIX ERE */
        if (regcomp(&s.re, s.value, REG_EXTENDED | REG_NOSUB) != 0) {
            free(s.value);
            return fail(err, errlen, path, "safe_regex", "invalid regex");
        }
    } else {
        memcpy(s.value, v, vlen + 1);
    }
    san_matcher *grown = realloc(t->sans, (t->n_sans + 1) * sizeof(*grown));
    if (grown == NULL) {
        if (s.kind == SAN_REGEX)
            regfree(&s.re);
        free(s.value);
        return fail(err, errlen, path, "", "out of memory");
    }
    t->sans = grown;
    t->sans[t->n_sans++] = s;
    return 0;
}

static int san_gen_type(int san_type)
{
    switch (san_type) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__EMAIL: return GEN_EMAIL;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__DNS: return GEN_DNS;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI: return GEN_URI;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__IP_ADDRESS: return GEN_IPADD;
    default: return -1;
    }
}

/* The deprecated match_subject_alt_names stands for one matcher per SAN
 * type (DNS, URI, EMAIL, IP_ADDRESS), as Envoy reads it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int add_san_matchers(upstream_tls_ctx *t, const pb_cvc *v, const char *path, char *err,
                            size_t errlen)
{
    char p[700];
    if (v->n_match_typed_subject_alt_names && v->n_match_subject_alt_names)
        return fail(err, errlen, path, "match_subject_alt_names",
                    "SAN-based verification using both match_typed_subject_alt_names and the "
                    "deprecated match_subject_alt_names is not allowed");
    for (size_t i = 0; i < v->n_match_typed_subject_alt_names; i++) {
        const pb_san *s = v->match_typed_subject_alt_names[i];
        snprintf(p, sizeof(p), "%s.match_typed_subject_alt_names[%zu]", path, i);
        if (s->san_type == ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__OTHER_NAME)
            return fail(err, errlen, p, "san_type", "unsupported: OTHER_NAME matching is not implemented");
        if (san_gen_type(s->san_type) < 0)
            return fail(err, errlen, p, "san_type", "must be EMAIL, DNS, URI or IP_ADDRESS");
        if (s->matcher == NULL)
            return fail(err, errlen, p, "matcher", "is required");
        char mp[760];
        snprintf(mp, sizeof(mp), "%s.matcher", p);
        if (add_san(t, san_gen_type(s->san_type), s->matcher, mp, err, errlen) != 0)
            return -1;
    }
    static const int legacy_types[] = {GEN_DNS, GEN_URI, GEN_EMAIL, GEN_IPADD};
    for (size_t i = 0; i < v->n_match_subject_alt_names; i++) {
        snprintf(p, sizeof(p), "%s.match_subject_alt_names[%zu]", path, i);
        for (size_t k = 0; k < sizeof(legacy_types) / sizeof(legacy_types[0]); k++) {
            if (add_san(t, legacy_types[k], v->match_subject_alt_names[i], p, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}
#pragma GCC diagnostic pop

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* verify_certificate_hash: 64 hex digits, or 95 with colons. */
static int parse_cert_hash(const char *s, unsigned char out[SHA256_LEN])
{
    size_t n = 0;
    int hi = -1;
    size_t len = strlen(s);
    if (len != 2 * SHA256_LEN && len != 3 * SHA256_LEN - 1)
        return -1;
    for (; *s; s++) {
        if (*s == ':' && len != 2 * SHA256_LEN)
            continue;
        int v = hex_value((unsigned char)*s);
        if (v < 0 || n >= SHA256_LEN)
            return -1;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    return n == SHA256_LEN ? 0 : -1;
}

/* verify_certificate_spki: base64 of a SHA-256 (44 characters). */
static int parse_spki_hash(const char *s, unsigned char out[SHA256_LEN])
{
    unsigned char buf[48];
    if (strlen(s) != 44 || EVP_DecodeBlock(buf, (const unsigned char *)s, 44) != 33 || s[43] != '=')
        return -1;
    memcpy(out, buf, SHA256_LEN);
    return 0;
}

static int add_hashes(upstream_tls_ctx *t, const pb_cvc *v, const char *path, char *err, size_t errlen)
{
    char p[700], why[300];
    if (v->n_verify_certificate_hash) {
        t->cert_hashes = calloc(v->n_verify_certificate_hash, SHA256_LEN);
        if (t->cert_hashes == NULL)
            return fail(err, errlen, path, "", "out of memory");
    }
    for (size_t i = 0; i < v->n_verify_certificate_hash; i++) {
        snprintf(p, sizeof(p), "%s.verify_certificate_hash[%zu]", path, i);
        if (parse_cert_hash(v->verify_certificate_hash[i], t->cert_hashes[i]) != 0) {
            snprintf(why, sizeof(why), "Invalid hex-encoded SHA-256 %.100s", v->verify_certificate_hash[i]);
            return fail(err, errlen, p, "", why);
        }
        t->n_cert_hashes++;
    }
    if (v->n_verify_certificate_spki) {
        t->spki_hashes = calloc(v->n_verify_certificate_spki, SHA256_LEN);
        if (t->spki_hashes == NULL)
            return fail(err, errlen, path, "", "out of memory");
    }
    for (size_t i = 0; i < v->n_verify_certificate_spki; i++) {
        snprintf(p, sizeof(p), "%s.verify_certificate_spki[%zu]", path, i);
        if (parse_spki_hash(v->verify_certificate_spki[i], t->spki_hashes[i]) != 0) {
            snprintf(why, sizeof(why), "Invalid base64-encoded SHA-256 %.100s", v->verify_certificate_spki[i]);
            return fail(err, errlen, p, "", why);
        }
        t->n_spki_hashes++;
    }
    return 0;
}

/* --- certificate verification (a handshake on a worker) ----------------------------------------- */

/* Envoy's DNS SAN rule: `name` (configured) matches `pattern` (from the
 * certificate) exactly, ignoring case, or through a wildcard in the
 * pattern's left-most label ("*.example.com", "foo*.example.com"). */
static int label_wildcard_match(const char *label, size_t llen, const char *pat, size_t plen)
{
    if (plen == 1 && pat[0] == '*')
        return 1;
    const char *star = memchr(pat, '*', plen);
    if (star == NULL || memchr(star + 1, '*', plen - (size_t)(star - pat) - 1) != NULL)
        return 0;
    size_t before = (size_t)(star - pat), after = plen - before - 1;
    return plen <= llen + 1 && strncmp(label, pat, before) == 0 &&
           memcmp(label + llen - after, star + 1, after) == 0;
}

static int dns_name_match(const char *name, const char *pattern)
{
    if (strcasecmp(name, pattern) == 0)
        return 1;
    char n[256], p[256];
    size_t nl = strlen(name), pl = strlen(pattern);
    if (nl >= sizeof(n) || pl >= sizeof(p))
        return 0;
    for (size_t i = 0; i <= nl; i++)
        n[i] = (char)tolower((unsigned char)name[i]);
    for (size_t i = 0; i <= pl; i++)
        p[i] = (char)tolower((unsigned char)pattern[i]);
    const char *nd = strchr(n, '.'), *pd = strchr(p, '.');
    if (nd == NULL || pd == NULL)
        return 0;
    size_t p0 = (size_t)(pd - p), n0 = (size_t)(nd - n);
    if (memchr(p, '*', p0) == NULL || strchr(pd + 1, '*') != NULL || strncmp(p, "xn--", 4) == 0)
        return 0;
    return strcmp(nd + 1, pd + 1) == 0 && label_wildcard_match(n, n0, p, p0);
}

static int has_prefix_ci(const char *s, const char *pre, int ci)
{
    size_t n = strlen(pre);
    return ci ? strncasecmp(s, pre, n) == 0 : strncmp(s, pre, n) == 0;
}

static int string_match(const san_matcher *m, const char *s)
{
    size_t sl = strlen(s), vl = strlen(m->value);
    switch (m->kind) {
    case SAN_EXACT:
        return m->ignore_case ? strcasecmp(s, m->value) == 0 : strcmp(s, m->value) == 0;
    case SAN_PREFIX:
        return has_prefix_ci(s, m->value, m->ignore_case);
    case SAN_SUFFIX:
        return sl >= vl && (m->ignore_case ? strcasecmp(s + sl - vl, m->value) == 0
                                           : strcmp(s + sl - vl, m->value) == 0);
    case SAN_CONTAINS:
        for (size_t i = 0; i + vl <= sl; i++) {
            if (has_prefix_ci(s + i, m->value, m->ignore_case))
                return 1;
        }
        return 0;
    case SAN_REGEX:
        return regexec(&m->re, s, 0, NULL, 0) == 0;
    }
    return 0;
}

/* A SAN as text (IP addresses printed); 0 when it has none usable. */
static int general_name_text(const GENERAL_NAME *gn, char *out, size_t outlen)
{
    const ASN1_STRING *str = NULL;
    switch (gn->type) {
    case GEN_DNS: str = gn->d.dNSName; break;
    case GEN_URI: str = gn->d.uniformResourceIdentifier; break;
    case GEN_EMAIL: str = gn->d.rfc822Name; break;
    case GEN_IPADD: {
        int len = ASN1_STRING_length(gn->d.iPAddress);
        const unsigned char *ip = ASN1_STRING_get0_data(gn->d.iPAddress);
        if (len == 4 || len == 16)
            return inet_ntop(len == 4 ? AF_INET : AF_INET6, ip, out, (socklen_t)outlen) != NULL;
        return 0;
    }
    default:
        return 0;
    }
    int len = ASN1_STRING_length(str);
    const unsigned char *d = ASN1_STRING_get0_data(str);
    if (len < 0 || (size_t)len >= outlen || memchr(d, '\0', (size_t)len) != NULL)
        return 0; /* an embedded NUL never matches */
    memcpy(out, d, (size_t)len);
    out[len] = '\0';
    return 1;
}

static int san_matches(const upstream_tls_ctx *t, X509 *cert)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int ok = 0;
    for (size_t k = 0; names && !ok && k < t->n_sans; k++) {
        const san_matcher *m = &t->sans[k];
        for (int i = 0; !ok && i < sk_GENERAL_NAME_num(names); i++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
            char text[1024];
            if (gn->type != m->gen_type || !general_name_text(gn, text, sizeof(text)))
                continue;
            ok = (m->gen_type == GEN_DNS && m->kind == SAN_EXACT) ? dns_name_match(m->value, text)
                                                                  : string_match(m, text);
        }
    }
    GENERAL_NAMES_free(names);
    return ok;
}

/* "DNS:a, IP:b" for the verification detail. */
static void list_sans(X509 *cert, char *out, size_t outlen)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && used < outlen; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        char text[256];
        if (!general_name_text(gn, text, sizeof(text)))
            continue;
        const char *kind = gn->type == GEN_DNS ? "DNS" : gn->type == GEN_URI ? "URI"
                         : gn->type == GEN_EMAIL ? "EMAIL" : "IP";
        int w = snprintf(out + used, outlen - used, "%s%s:%s", used ? ", " : "", kind, text);
        used += w > 0 ? (size_t)w : 0;
    }
    GENERAL_NAMES_free(names);
}

static int hash_matches(const upstream_tls_ctx *t, X509 *cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (t->n_cert_hashes && X509_digest(cert, EVP_sha256(), md, &len) == 1 && len == SHA256_LEN) {
        for (size_t i = 0; i < t->n_cert_hashes; i++) {
            if (memcmp(md, t->cert_hashes[i], SHA256_LEN) == 0)
                return 1;
        }
    }
    if (t->n_spki_hashes) {
        unsigned char *spki = NULL;
        int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
        if (n > 0) {
            SHA256(spki, (size_t)n, md);
            OPENSSL_free(spki);
            for (size_t i = 0; i < t->n_spki_hashes; i++) {
                if (memcmp(md, t->spki_hashes[i], SHA256_LEN) == 0)
                    return 1;
            }
        }
    }
    return 0;
}

static void verify_note(upstream_tls_conn *c, int stat, const char *detail)
{
    if (c == NULL)
        return;
    if (c->stats)
        stats_inc(c->stats, (size_t)stat);
    snprintf(c->verify_detail, sizeof(c->verify_detail), "%s", detail);
}

/* SSL_CTX_set_cert_verify_callback: Envoy's DefaultCertValidator. With no
 * validation_context nothing is checked (Envoy's behaviour); a trusted CA
 * verifies the chain (fail_verify_error); SAN matchers and certificate
 * hashes check the leaf (fail_verify_san, fail_verify_cert_hash);
 * ACCEPT_UNTRUSTED counts failures and lets the connection proceed. */
static int verify_certificate(X509_STORE_CTX *store_ctx, void *arg)
{
    const upstream_tls_ctx *t = arg;
    if (!t->verify)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    upstream_tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(store_ctx);
    char detail[384];
    if (leaf == NULL) {
        verify_note(c, UPSTREAM_TLS_STAT_FAIL_VERIFY_ERROR, "verify cert failed: empty cert chain");
        return 0;
    }
    if (t->verify_trusted_ca && X509_verify_cert(store_ctx) != 1) {
        snprintf(detail, sizeof(detail),
                 "verify cert failed: X509_verify_cert: certificate verification error at depth %d: %s",
                 X509_STORE_CTX_get_error_depth(store_ctx),
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(store_ctx)));
        verify_note(c, UPSTREAM_TLS_STAT_FAIL_VERIFY_ERROR, detail);
        return t->accept_untrusted;
    }
    if (t->n_sans && !san_matches(t, leaf)) {
        char sans[256];
        list_sans(leaf, sans, sizeof(sans));
        snprintf(detail, sizeof(detail), "verify cert failed: SAN matcher, certificate SANs are [%s]", sans);
        verify_note(c, UPSTREAM_TLS_STAT_FAIL_VERIFY_SAN, detail);
        X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return t->accept_untrusted;
    }
    if ((t->n_cert_hashes || t->n_spki_hashes) && !hash_matches(t, leaf)) {
        verify_note(c, UPSTREAM_TLS_STAT_FAIL_VERIFY_CERT_HASH, "verify cert failed: cert hash and spki");
        X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return t->accept_untrusted;
    }
    return 1;
}

static int apply_validation(upstream_tls_ctx *t, const pb_common_tls *ct, const char *path, char *err,
                            size_t errlen)
{
    if (ct->validation_context_type_case !=
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT)
        return 0; /* Envoy: no validation context, no verification */
    const pb_cvc *v = ct->validation_context;
    char p[600], sub[700];
    snprintf(p, sizeof(p), "%s.validation_context", path);
    if (check_rules(&v->base, p, cvc_rules, N_RULES(cvc_rules), err, errlen) != 0)
        return -1;
    if (v->require_signed_certificate_timestamp && v->require_signed_certificate_timestamp->value)
        return fail(err, errlen, p, "require_signed_certificate_timestamp",
                    "unsupported: signed certificate timestamps are not implemented");
    if (v->trusted_ca) {
        snprintf(sub, sizeof(sub), "%s.trusted_ca", p);
        if (load_trusted_ca(t, v->trusted_ca, sub, err, errlen) != 0)
            return -1;
        t->verify_trusted_ca = 1;
    } else if (v->system_root_certs) {
        if (X509_STORE_set_default_paths(SSL_CTX_get_cert_store(t->ssl_ctx)) != 1) {
            ERR_clear_error();
            return fail(err, errlen, p, "system_root_certs", "cannot load the system root certificates");
        }
        t->verify_trusted_ca = 1;
    }
    if (v->allow_expired_certificate && t->verify_trusted_ca)
        X509_STORE_set_flags(SSL_CTX_get_cert_store(t->ssl_ctx), X509_V_FLAG_NO_CHECK_TIME);
    if (v->max_verify_depth) {
        if (v->max_verify_depth->value > MAX_VERIFY_DEPTH_LIMIT)
            return fail(err, errlen, p, "max_verify_depth", "value must be less than or equal to 100");
        SSL_CTX_set_verify_depth(t->ssl_ctx, (int)v->max_verify_depth->value);
    }
    if (add_san_matchers(t, v, p, err, errlen) != 0 || add_hashes(t, v, p, err, errlen) != 0)
        return -1;
    t->accept_untrusted = v->trust_chain_verification ==
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__TRUST_CHAIN_VERIFICATION__ACCEPT_UNTRUSTED;
    t->verify = t->verify_trusted_ca || t->n_sans || t->n_cert_hashes || t->n_spki_hashes;
    if (t->verify)
        SSL_CTX_set_verify(t->ssl_ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

/* --- session cache (max_session_keys) ------------------------------------------------------ */

static void sessions_drop_front(upstream_tls_ctx *t)
{
    SSL_SESSION_free(t->sessions[0]);
    memmove(&t->sessions[0], &t->sessions[1], (t->n_sessions - 1) * sizeof(t->sessions[0]));
    t->n_sessions--;
}

/* SSL_CTX_sess_set_new_cb: keeps the newest max_session_keys sessions. */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
    upstream_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    pthread_mutex_lock(&t->session_mu);
    if (t->n_sessions == t->max_session_keys) {
        SSL_SESSION_free(t->sessions[t->n_sessions - 1]);
        t->n_sessions--;
    }
    memmove(&t->sessions[1], &t->sessions[0], t->n_sessions * sizeof(t->sessions[0]));
    t->sessions[0] = session;
    t->n_sessions++;
    pthread_mutex_unlock(&t->session_mu);
    return 1; /* the session is ours now */
}

void upstream_tls_ctx_resume(upstream_tls_ctx *t, SSL *ssl)
{
    if (t->max_session_keys == 0)
        return;
    pthread_mutex_lock(&t->session_mu);
    while (t->n_sessions > 0) {
        SSL_SESSION *s = t->sessions[0];
        if (!SSL_SESSION_is_resumable(s)) {
            sessions_drop_front(t);
            continue;
        }
        SSL_set_session(ssl, s);
        if (SSL_SESSION_get_protocol_version(s) >= TLS_V1_3)
            sessions_drop_front(t); /* TLS 1.3 tickets are single-use, as Envoy uses them */
        break;
    }
    pthread_mutex_unlock(&t->session_mu);
}

/* --- the context ----------------------------------------------------------------------------- */

static void ctx_free(upstream_tls_ctx *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_sessions; i++)
        SSL_SESSION_free(t->sessions[i]);
    free(t->sessions);
    for (size_t i = 0; i < t->n_sans; i++) {
        if (t->sans[i].kind == SAN_REGEX)
            regfree(&t->sans[i].re);
        free(t->sans[i].value);
    }
    free(t->sans);
    free(t->cert_hashes);
    free(t->spki_hashes);
    SSL_CTX_free(t->ssl_ctx);
    free(t->sni);
    pthread_mutex_destroy(&t->session_mu);
    free(t);
}

void upstream_tls_ctx_ref(upstream_tls_ctx *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
}

void upstream_tls_ctx_unref(upstream_tls_ctx *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1)
        ctx_free(t);
}

static int build(upstream_tls_ctx *t, const pb_upstream_tls *u, const char *p, char *err, size_t errlen)
{
    if (check_rules(&u->base, p, upstream_rules, N_RULES(upstream_rules), err, errlen) != 0)
        return -1;
    if (strlen(u->sni) > SNI_MAX_BYTES)
        return fail(err, errlen, p, "sni", "value length must be at most 255 bytes");
    t->sni = strdup(u->sni);
    t->max_session_keys = u->max_session_keys ? u->max_session_keys->value
                                              : UPSTREAM_TLS_DEFAULT_MAX_SESSION_KEYS;
    t->ssl_ctx = SSL_CTX_new(TLS_method());
    if (t->sni == NULL || t->ssl_ctx == NULL ||
        (t->max_session_keys && !(t->sessions = calloc(t->max_session_keys, sizeof(SSL_SESSION *))))) {
        ERR_clear_error();
        return fail(err, errlen, p, "", "out of memory");
    }
    SSL_CTX_set_app_data(t->ssl_ctx, t);
    long opts = SSL_OP_NO_COMPRESSION;
#ifdef SSL_OP_NO_RENEGOTIATION
    opts |= SSL_OP_NO_RENEGOTIATION; /* BoringSSL refuses renegotiation by default */
#endif
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    opts |= SSL_OP_IGNORE_UNEXPECTED_EOF; /* a FIN without close_notify ends the stream, as in Envoy */
#endif
    SSL_CTX_set_options(t->ssl_ctx, opts);
    SSL_CTX_set_mode(t->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(t->ssl_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_cert_verify_callback(t->ssl_ctx, verify_certificate, t);
    if (t->max_session_keys > 0) {
        SSL_CTX_set_session_cache_mode(t->ssl_ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(t->ssl_ctx, on_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(t->ssl_ctx, SSL_SESS_CACHE_OFF);
    }
    static const pb_common_tls empty_common =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT;
    const pb_common_tls *ct = u->common_tls_context ? u->common_tls_context : &empty_common;
    char cp[600];
    snprintf(cp, sizeof(cp), "%s.common_tls_context", p);
    if (check_rules(&ct->base, cp, common_rules, N_RULES(common_rules), err, errlen) != 0 ||
        apply_tls_params(t, ct->tls_params, cp, err, errlen) != 0 ||
        load_tls_certificates(t, ct, cp, err, errlen) != 0 ||
        apply_validation(t, ct, cp, err, errlen) != 0 || apply_alpn(t, ct, cp, err, errlen) != 0)
        return -1;
    return 0;
}

/* UpstreamHttpProtocolOptions.auto_sni / auto_san_validation change the
 * SNI and the certificate check per request (from the Host header): not
 * implemented, so a TLS cluster that asks for them is refused rather than
 * verified less than configured. */
static int check_auto_sni(const Envoy__Config__Core__V3__UpstreamHttpProtocolOptions *o,
                          const char *path, char *err, size_t errlen)
{
    if (o && o->auto_san_validation)
        return fail(err, errlen, path, "auto_san_validation",
                    "unsupported: per-request SAN validation is not implemented (use "
                    "match_typed_subject_alt_names in the UpstreamTlsContext)");
    if (o && (o->auto_sni || o->override_auto_sni_header[0]))
        return fail(err, errlen, path, o->auto_sni ? "auto_sni" : "override_auto_sni_header",
                    "unsupported: per-request SNI is not implemented (set sni in the "
                    "UpstreamTlsContext)");
    return 0;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int check_cluster_sni_options(const pb_cluster *c, const char *path, char *err, size_t errlen)
{
    char p[600];
    snprintf(p, sizeof(p), "%s%supstream_http_protocol_options", path, *path ? "." : "");
    if (check_auto_sni(c->upstream_http_protocol_options, p, err, errlen) != 0)
        return -1;
    pb_http_protocol_options *hpo;
    if (cluster_http_protocol_options(c, &hpo) <= 0)
        return 0; /* none, or validate_cluster reports that it does not parse */
    snprintf(p, sizeof(p), "%s%styped_extension_protocol_options[\"%s\"].upstream_http_protocol_options",
             path, *path ? "." : "", HTTP_PROTOCOL_OPTIONS_NAME);
    int rc = check_auto_sni(hpo->upstream_http_protocol_options, p, err, errlen);
    protobuf_c_message_free_unpacked(&hpo->base, NULL);
    return rc != 0 ? -1 : 0;
}
#pragma GCC diagnostic pop

int upstream_tls_ctx_create(const pb_cluster *c, const char *path, upstream_tls_ctx **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    pb_upstream_tls *u;
    int rc = decode_context(c, path, &u, err, errlen);
    if (rc <= 0)
        return rc;
    if (check_cluster_sni_options(c, path, err, errlen) != 0) {
        protobuf_c_message_free_unpacked(&u->base, NULL);
        return -1;
    }
    upstream_tls_ctx *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        protobuf_c_message_free_unpacked(&u->base, NULL);
        return fail(err, errlen, path, "transport_socket", "out of memory");
    }
    atomic_init(&t->refs, 1);
    pthread_mutex_init(&t->session_mu, NULL);
    char p[512];
    snprintf(p, sizeof(p), "%s%stransport_socket.typed_config", path, *path ? "." : "");
    rc = build(t, u, p, err, errlen);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    ERR_clear_error();
    if (rc != 0) {
        ctx_free(t);
        return -1;
    }
    *out = t;
    return 0;
}
