/*
 * pbjson.c: the proto3 JSON mapping over protobuf-c descriptors (pbjson.h).
 *
 * Everything here is generic: a message is walked through its
 * ProtobufCMessageDescriptor, and fields are read and written at the
 * descriptor's offsets. Well-known types are recognised by full name and
 * get their special JSON forms. The only shared state is the sorted type
 * index, built once under pthread_once and read-only afterwards.
 */
#include "xdsnode/pbjson.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/pb_registry.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

/* Duration range allowed by google/protobuf/duration.proto (~10000 years). */
#define DURATION_MAX_SECONDS 315576000000LL
/* Timestamp range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define TIMESTAMP_MIN_SECONDS (-62135596800LL)
#define TIMESTAMP_MAX_SECONDS 253402300799LL
#define NANOS_PER_SECOND 1000000000
#define SECONDS_PER_DAY 86400LL
/* Longest error path kept; deeper paths are truncated. */
#define PATH_BUF_LEN 1024
/* Doubles with integral values below 2^53 are printed as JSON integers. */
#define DOUBLE_EXACT_INT_LIMIT 9007199254740992.0

/* ---- type registry ---------------------------------------------------- */

static const ProtobufCMessageDescriptor **registry_sorted;
static size_t registry_n;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static int compare_descriptors(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *da = *(const ProtobufCMessageDescriptor *const *)a;
    const ProtobufCMessageDescriptor *db = *(const ProtobufCMessageDescriptor *const *)b;
    return strcmp(da->name, db->name);
}

static int compare_name_to_descriptor(const void *key, const void *elem)
{
    const ProtobufCMessageDescriptor *d = *(const ProtobufCMessageDescriptor *const *)elem;
    return strcmp((const char *)key, d->name);
}

static void registry_build(void)
{
    size_t n = pb_registry_n_messages;
    registry_sorted = malloc((n ? n : 1) * sizeof(*registry_sorted));
    if (registry_sorted == NULL)
        return;
    memcpy(registry_sorted, pb_registry_messages, n * sizeof(*registry_sorted));
    qsort(registry_sorted, n, sizeof(*registry_sorted), compare_descriptors);
    registry_n = n;
}

const ProtobufCMessageDescriptor *pbjson_type_lookup(const char *name_or_url)
{
    const ProtobufCMessageDescriptor *const *hit;
    const char *slash;

    if (name_or_url == NULL)
        return NULL;
    pthread_once(&registry_once, registry_build);
    slash = strrchr(name_or_url, '/');
    if (slash != NULL)
        name_or_url = slash + 1;
    if (registry_n == 0)
        return NULL;
    hit = bsearch(name_or_url, registry_sorted, registry_n, sizeof(*registry_sorted),
                  compare_name_to_descriptor);
    return hit ? *hit : NULL;
}

/* ---- well-known types ------------------------------------------------- */

enum wkt_kind {
    WKT_NONE,
    WKT_ANY,
    WKT_DURATION,
    WKT_TIMESTAMP,
    WKT_WRAPPER,
    WKT_STRUCT,
    WKT_VALUE,
    WKT_LIST_VALUE,
    WKT_FIELD_MASK,
};

static enum wkt_kind wkt_of(const ProtobufCMessageDescriptor *d)
{
    static const struct { const char *name; enum wkt_kind kind; } table[] = {
        { "Any", WKT_ANY },               { "Duration", WKT_DURATION },
        { "Timestamp", WKT_TIMESTAMP },   { "DoubleValue", WKT_WRAPPER },
        { "FloatValue", WKT_WRAPPER },    { "Int64Value", WKT_WRAPPER },
        { "UInt64Value", WKT_WRAPPER },   { "Int32Value", WKT_WRAPPER },
        { "UInt32Value", WKT_WRAPPER },   { "BoolValue", WKT_WRAPPER },
        { "StringValue", WKT_WRAPPER },   { "BytesValue", WKT_WRAPPER },
        { "Struct", WKT_STRUCT },         { "Value", WKT_VALUE },
        { "ListValue", WKT_LIST_VALUE },  { "FieldMask", WKT_FIELD_MASK },
    };
    static const char prefix[] = "google.protobuf.";
    size_t i;

    if (strncmp(d->name, prefix, sizeof(prefix) - 1) != 0)
        return WKT_NONE;
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(d->name + sizeof(prefix) - 1, table[i].name) == 0)
            return table[i].kind;
    return WKT_NONE;
}

/* ---- names ------------------------------------------------------------ */

/* Does `key` equal the lowerCamelCase JSON name of proto field `name`? */
static int json_name_equals(const char *name, const char *key)
{
    int upper_next = 0;

    for (; *name != '\0'; name++) {
        char c = *name;
        if (c == '_') {
            upper_next = 1;
            continue;
        }
        if (upper_next && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        upper_next = 0;
        if (*key++ != c)
            return 0;
    }
    return *key == '\0';
}

/* Does `s` start with protoc's map entry name for field `name`
 * (UpperCamel + "Entry"), ending right there? */
static int map_entry_name_equals(const char *name, const char *s)
{
    int upper_next = 1;

    for (; *name != '\0'; name++) {
        char c = *name;
        if (c == '_') {
            upper_next = 1;
            continue;
        }
        if (upper_next && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        upper_next = 0;
        if (*s++ != c)
            return 0;
    }
    return strcmp(s, "Entry") == 0;
}

static const ProtobufCFieldDescriptor *field_by_json_key(const ProtobufCMessageDescriptor *d,
                                                         const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    unsigned i;

    if (f != NULL)
        return f;
    for (i = 0; i < d->n_fields; i++)
        if (json_name_equals(d->fields[i].name, key))
            return &d->fields[i];
    return NULL;
}

/* A map<K,V> field: repeated Parent.<Camel>Entry { key = 1; value = 2; }. */
static int field_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e;
    size_t plen;

    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    e = f->descriptor;
    if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
        strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
        return 0;
    plen = strlen(parent->name);
    if (strncmp(e->name, parent->name, plen) != 0 || e->name[plen] != '.')
        return 0;
    return map_entry_name_equals(f->name, e->name + plen + 1);
}

/* ---- raw field access ------------------------------------------------- */

static void *field_slot(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

static const void *field_slot_const(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (const char *)m + f->offset;
}

static void *field_quantifier(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->quantifier_offset;
}

static const void *field_quantifier_const(const ProtobufCMessage *m,
                                          const ProtobufCFieldDescriptor *f)
{
    return (const char *)m + f->quantifier_offset;
}

static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static ProtobufCMessage *message_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);

    if (m != NULL)
        d->message_init(m);
    return m;
}

/* ---- base64 ----------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64_encode(const uint8_t *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    size_t i, o = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes standard or URL-safe base64, padding optional. */
static int base64_decode(const char *s, ProtobufCBinaryData *out)
{
    size_t len = strlen(s), i, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    uint8_t *buf;

    while (len > 0 && s[len - 1] == '=')
        len--;
    if (strlen(s) - len > 2 || len % 4 == 1)
        return -1;
    buf = malloc(len * 3 / 4 + 1);
    if (buf == NULL)
        return -1;
    for (i = 0; i < len; i++) {
        int v = base64_value(s[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = buf;
    out->len = o;
    return 0;
}

/* ---- Duration and Timestamp text --------------------------------------- */

char *pbjson_format_duration(long long seconds, int nanos, char *buf, size_t buflen)
{
    int negative = seconds < 0 || nanos < 0;
    unsigned long long s = seconds < 0 ? 0ULL - (unsigned long long)seconds
                                       : (unsigned long long)seconds;
    int n = nanos < 0 ? -nanos : nanos;
    const char *sign = negative ? "-" : "";

    if (buf == NULL || buflen == 0)
        return buf;
    if (n == 0)
        snprintf(buf, buflen, "%s%llus", sign, s);
    else if (n % 1000000 == 0)
        snprintf(buf, buflen, "%s%llu.%03ds", sign, s, n / 1000000);
    else if (n % 1000 == 0)
        snprintf(buf, buflen, "%s%llu.%06ds", sign, s, n / 1000);
    else
        snprintf(buf, buflen, "%s%llu.%09ds", sign, s, n);
    return buf;
}

/* Reads 1..9 fraction digits after a '.' into nanoseconds. */
static const char *parse_nanos(const char *p, int *nanos)
{
    int digits = 0, value = 0;

    while (*p >= '0' && *p <= '9') {
        if (++digits > 9)
            return NULL;
        value = value * 10 + (*p++ - '0');
    }
    if (digits == 0)
        return NULL;
    for (; digits < 9; digits++)
        value *= 10;
    *nanos = value;
    return p;
}

int pbjson_parse_duration(const char *text, long long *seconds, int *nanos)
{
    const char *p = text;
    long long s = 0;
    int n = 0, negative = 0;

    if (p == NULL)
        return -1;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9') {
        s = s * 10 + (*p++ - '0');
        if (s > DURATION_MAX_SECONDS)
            return -1;
    }
    if (*p == '.') {
        p = parse_nanos(p + 1, &n);
        if (p == NULL)
            return -1;
    }
    if (p[0] != 's' || p[1] != '\0')
        return -1;
    *seconds = negative ? -s : s;
    *nanos = negative ? -n : n;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    long long era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int format_timestamp(long long seconds, int nanos, char *buf, size_t buflen)
{
    long long days, rem, year;
    unsigned month, day;
    char frac[16] = "";

    if (seconds < TIMESTAMP_MIN_SECONDS || seconds > TIMESTAMP_MAX_SECONDS || nanos < 0 ||
        nanos >= NANOS_PER_SECOND)
        return -1;
    days = seconds / SECONDS_PER_DAY;
    rem = seconds % SECONDS_PER_DAY;
    if (rem < 0) {
        rem += SECONDS_PER_DAY;
        days--;
    }
    civil_from_days(days, &year, &month, &day);
    if (nanos % 1000000 == 0 && nanos != 0)
        snprintf(frac, sizeof(frac), ".%03d", nanos / 1000000);
    else if (nanos % 1000 == 0 && nanos != 0)
        snprintf(frac, sizeof(frac), ".%06d", nanos / 1000);
    else if (nanos != 0)
        snprintf(frac, sizeof(frac), ".%09d", nanos);
    snprintf(buf, buflen, "%04lld-%02u-%02uT%02lld:%02lld:%02lld%sZ", year, month, day,
             rem / 3600, rem / 60 % 60, rem % 60, frac);
    return 0;
}

/* Reads exactly `n` digits. */
static const char *parse_digits(const char *p, int n, int *out)
{
    int v = 0;

    while (n-- > 0) {
        if (*p < '0' || *p > '9')
            return NULL;
        v = v * 10 + (*p++ - '0');
    }
    *out = v;
    return p;
}

static int days_in_month(int year, int month)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM). */
static int parse_timestamp(const char *p, long long *seconds, int *nanos)
{
    int y, mo, d, h, mi, s, n = 0, oh = 0, om = 0, sign = 0;

    if (!(p = parse_digits(p, 4, &y)) || *p++ != '-' || !(p = parse_digits(p, 2, &mo)) ||
        *p++ != '-' || !(p = parse_digits(p, 2, &d)) || (*p != 'T' && *p != 't'))
        return -1;
    if (!(p = parse_digits(p + 1, 2, &h)) || *p++ != ':' || !(p = parse_digits(p, 2, &mi)) ||
        *p++ != ':' || !(p = parse_digits(p, 2, &s)))
        return -1;
    if (*p == '.' && !(p = parse_nanos(p + 1, &n)))
        return -1;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (!(p = parse_digits(p + 1, 2, &oh)) || *p++ != ':' || !(p = parse_digits(p, 2, &om)))
            return -1;
    } else {
        return -1;
    }
    if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
        h > 23 || mi > 59 || s > 59 || oh > 23 || om > 59)
        return -1;
    *seconds = days_from_civil(y, (unsigned)mo, (unsigned)d) * SECONDS_PER_DAY + h * 3600LL +
               mi * 60LL + s - sign * (oh * 3600LL + om * 60LL);
    *nanos = n;
    if (*seconds < TIMESTAMP_MIN_SECONDS || *seconds > TIMESTAMP_MAX_SECONDS)
        return -1;
    return 0;
}

/* ---- decoding: context and errors -------------------------------------- */

struct decoder {
    char path[PATH_BUF_LEN];
    size_t path_len;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int decode_fail(struct decoder *dc, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (dc->err == NULL || dc->errlen == 0)
        return -1;
    if (dc->path_len > 0)
        snprintf(dc->err, dc->errlen, "%s: %s", dc->path, reason);
    else
        snprintf(dc->err, dc->errlen, "%s", reason);
    return -1;
}

static size_t path_append(struct decoder *dc, const char *fmt, const char *text, size_t index)
{
    size_t mark = dc->path_len;
    int n;

    if (text != NULL)
        n = snprintf(dc->path + mark, sizeof(dc->path) - mark, fmt, text);
    else
        n = snprintf(dc->path + mark, sizeof(dc->path) - mark, fmt, index);
    if (n > 0)
        dc->path_len += (size_t)n;
    if (dc->path_len >= sizeof(dc->path))
        dc->path_len = sizeof(dc->path) - 1;
    return mark;
}

static size_t path_push_field(struct decoder *dc, const char *name)
{
    return path_append(dc, dc->path_len > 0 ? ".%s" : "%s", name, 0);
}

static size_t path_push_index(struct decoder *dc, size_t index)
{
    return path_append(dc, "[%zu]", NULL, index);
}

static size_t path_push_key(struct decoder *dc, const char *key)
{
    return path_append(dc, "[\"%s\"]", key, 0);
}

static void path_pop(struct decoder *dc, size_t mark)
{
    dc->path_len = mark;
    dc->path[mark] = '\0';
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "value";
}

/* ---- decoding: scalars ------------------------------------------------- */

static int decode_integer_text(struct decoder *dc, const char *s, int is_unsigned,
                               long long *sv, unsigned long long *uv)
{
    char *end;

    errno = 0;
    if (*s == '\0' || !((*s >= '0' && *s <= '9') || *s == '-'))
        return decode_fail(dc, "invalid integer \"%s\"", s);
    if (is_unsigned && *s != '-')
        *uv = strtoull(s, &end, 10);
    else
        *sv = strtoll(s, &end, 10);
    if (*end != '\0' || end == s)
        return decode_fail(dc, "invalid integer \"%s\"", s);
    if (errno == ERANGE || (is_unsigned && *s == '-' && *sv < 0))
        return decode_fail(dc, "integer out of range");
    if (is_unsigned && *s == '-')
        *uv = (unsigned long long)*sv;
    return 0;
}

/* Reads a JSON integer (number, integral real, or decimal string). Signed
 * results land in *sv, unsigned ones in *uv. */
static int decode_integer(struct decoder *dc, const json_t *j, int is_unsigned,
                          long long *sv, unsigned long long *uv)
{
    if (json_is_string(j))
        return decode_integer_text(dc, json_string_value(j), is_unsigned, sv, uv);
    if (json_is_integer(j)) {
        long long v = json_integer_value(j);
        if (is_unsigned && v < 0)
            return decode_fail(dc, "integer out of range");
        *sv = v;
        *uv = (unsigned long long)v;
        return 0;
    }
    if (json_is_real(j)) {
        double x = json_real_value(j);
        if (x != trunc(x))
            return decode_fail(dc, "invalid integer %.17g", x);
        if (x < (is_unsigned ? 0.0 : -9223372036854775808.0) ||
            x >= (is_unsigned ? 18446744073709551616.0 : 9223372036854775808.0))
            return decode_fail(dc, "integer out of range");
        if (is_unsigned)
            *uv = (unsigned long long)x;
        else
            *sv = (long long)x;
        return 0;
    }
    return decode_fail(dc, "expected integer, got %s", json_kind(j));
}

static int decode_signed(struct decoder *dc, const json_t *j, long long lo, long long hi,
                         long long *out)
{
    unsigned long long unused;

    if (decode_integer(dc, j, 0, out, &unused) != 0)
        return -1;
    if (*out < lo || *out > hi)
        return decode_fail(dc, "integer out of range");
    return 0;
}

static int decode_unsigned(struct decoder *dc, const json_t *j, unsigned long long hi,
                           unsigned long long *out)
{
    long long unused;

    if (decode_integer(dc, j, 1, &unused, out) != 0)
        return -1;
    if (*out > hi)
        return decode_fail(dc, "integer out of range");
    return 0;
}

static int decode_double(struct decoder *dc, const json_t *j, double *out)
{
    const char *s;
    char *end;

    if (json_is_number(j)) {
        *out = json_number_value(j);
        return 0;
    }
    if (!json_is_string(j))
        return decode_fail(dc, "expected number, got %s", json_kind(j));
    s = json_string_value(j);
    if (strcmp(s, "NaN") == 0)
        *out = NAN;
    else if (strcmp(s, "Infinity") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0)
        *out = -INFINITY;
    else {
        errno = 0;
        *out = strtod(s, &end);
        if (*s == '\0' || *end != '\0' || !isfinite(*out) || (*s != '-' && (*s < '0' || *s > '9')))
            return decode_fail(dc, "invalid number \"%s\"", s);
    }
    return 0;
}

static int decode_enum(struct decoder *dc, const ProtobufCEnumDescriptor *ed, const json_t *j,
                       int *out)
{
    if (json_is_string(j)) {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
        if (v == NULL)
            return decode_fail(dc, "invalid value \"%s\" for enum %s", json_string_value(j),
                               ed->name);
        *out = v->value;
        return 0;
    }
    if (json_is_integer(j)) {
        long long v;
        if (decode_signed(dc, j, INT32_MIN, INT32_MAX, &v) != 0)
            return -1;
        *out = (int)v;
        return 0;
    }
    return decode_fail(dc, "expected string, got %s", json_kind(j));
}

static int decode_string(struct decoder *dc, const json_t *j, char **out)
{
    char *copy;

    if (!json_is_string(j))
        return decode_fail(dc, "expected string, got %s", json_kind(j));
    copy = strdup(json_string_value(j));
    if (copy == NULL)
        return decode_fail(dc, "out of memory");
    *out = copy;
    return 0;
}

static int decode_bytes(struct decoder *dc, const json_t *j, ProtobufCBinaryData *out)
{
    if (!json_is_string(j))
        return decode_fail(dc, "expected string, got %s", json_kind(j));
    if (base64_decode(json_string_value(j), out) != 0)
        return decode_fail(dc, "invalid base64");
    return 0;
}

static int decode_message(struct decoder *dc, const ProtobufCMessageDescriptor *d,
                          const json_t *j, ProtobufCMessage **out);

/* Decodes one value of field `f`'s type into `slot` (written on success only). */
static int decode_value(struct decoder *dc, const ProtobufCFieldDescriptor *f, const json_t *j,
                        void *slot)
{
    long long sv;
    unsigned long long uv;
    double x;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (decode_signed(dc, j, INT32_MIN, INT32_MAX, &sv) != 0)
            return -1;
        *(int32_t *)slot = (int32_t)sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (decode_unsigned(dc, j, UINT32_MAX, &uv) != 0)
            return -1;
        *(uint32_t *)slot = (uint32_t)uv;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (decode_signed(dc, j, INT64_MIN, INT64_MAX, &sv) != 0)
            return -1;
        *(int64_t *)slot = sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (decode_unsigned(dc, j, UINT64_MAX, &uv) != 0)
            return -1;
        *(uint64_t *)slot = uv;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (decode_double(dc, j, &x) != 0)
            return -1;
        if (isfinite(x) && fabs(x) > FLT_MAX)
            return decode_fail(dc, "float out of range");
        *(float *)slot = (float)x;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return decode_double(dc, j, (double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(j))
            return decode_fail(dc, "expected boolean, got %s", json_kind(j));
        *(protobuf_c_boolean *)slot = json_is_true(j);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return decode_enum(dc, f->descriptor, j, (int *)slot);
    case PROTOBUF_C_TYPE_STRING:
        return decode_string(dc, j, (char **)slot);
    case PROTOBUF_C_TYPE_BYTES:
        return decode_bytes(dc, j, (ProtobufCBinaryData *)slot);
    case PROTOBUF_C_TYPE_MESSAGE:
        return decode_message(dc, f->descriptor, j, (ProtobufCMessage **)slot);
    }
    return decode_fail(dc, "unsupported field type");
}

/* ---- decoding: repeated, maps, fields ---------------------------------- */

static int decode_repeated(struct decoder *dc, ProtobufCMessage *m,
                           const ProtobufCFieldDescriptor *f, const json_t *j)
{
    size_t n, i, esz = element_size(f->type);
    size_t *count = field_quantifier(m, f);
    char *arr;

    if (json_is_null(j))
        return 0;
    if (!json_is_array(j))
        return decode_fail(dc, "expected array, got %s", json_kind(j));
    n = json_array_size(j);
    if (n == 0)
        return 0;
    arr = calloc(n, esz);
    if (arr == NULL)
        return decode_fail(dc, "out of memory");
    *(void **)field_slot(m, f) = arr;
    *count = 0;
    for (i = 0; i < n; i++) {
        size_t mark = path_push_index(dc, i);
        int rc = decode_value(dc, f, json_array_get(j, i), arr + i * esz);
        path_pop(dc, mark);
        if (rc != 0)
            return -1;
        (*count)++;
    }
    return 0;
}

static int decode_map_key(struct decoder *dc, const ProtobufCFieldDescriptor *kf, const char *key,
                          ProtobufCMessage *entry)
{
    json_t *tmp;
    int rc;

    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
            return decode_fail(dc, "invalid map key \"%s\"", key);
        *(protobuf_c_boolean *)field_slot(entry, kf) = strcmp(key, "true") == 0;
        return 0;
    }
    tmp = json_string(key);
    if (tmp == NULL)
        return decode_fail(dc, "out of memory");
    rc = decode_value(dc, kf, tmp, field_slot(entry, kf));
    json_decref(tmp);
    return rc;
}

static int decode_map_entry(struct decoder *dc, const ProtobufCMessageDescriptor *ed,
                            const char *key, const json_t *value, ProtobufCMessage **out)
{
    ProtobufCMessage *entry = message_new(ed);

    if (entry == NULL)
        return decode_fail(dc, "out of memory");
    if (decode_map_key(dc, &ed->fields[0], key, entry) != 0 ||
        decode_value(dc, &ed->fields[1], value, field_slot(entry, &ed->fields[1])) != 0) {
        protobuf_c_message_free_unpacked(entry, NULL);
        return -1;
    }
    *out = entry;
    return 0;
}

static int decode_map(struct decoder *dc, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                      const json_t *j)
{
    size_t *count = field_quantifier(m, f);
    ProtobufCMessage **arr;
    const char *key;
    void *iter;

    if (json_is_null(j))
        return 0;
    if (!json_is_object(j))
        return decode_fail(dc, "expected object, got %s", json_kind(j));
    if (json_object_size(j) == 0)
        return 0;
    arr = calloc(json_object_size(j), sizeof(*arr));
    if (arr == NULL)
        return decode_fail(dc, "out of memory");
    *(ProtobufCMessage ***)field_slot(m, f) = arr;
    *count = 0;
    for (iter = json_object_iter((json_t *)j); iter != NULL;
         iter = json_object_iter_next((json_t *)j, iter)) {
        size_t mark;
        int rc;
        key = json_object_iter_key(iter);
        mark = path_push_key(dc, key);
        rc = decode_map_entry(dc, f->descriptor, key, json_object_iter_value(iter), &arr[*count]);
        path_pop(dc, mark);
        if (rc != 0)
            return -1;
        (*count)++;
    }
    return 0;
}

static int decode_oneof_member(struct decoder *dc, ProtobufCMessage *m,
                               const ProtobufCFieldDescriptor *f, const json_t *j)
{
    uint32_t *which = field_quantifier(m, f);

    if (*which != 0) {
        const ProtobufCFieldDescriptor *other =
            protobuf_c_message_descriptor_get_field(m->descriptor, (unsigned)*which);
        return decode_fail(dc, "field \"%s\" conflicts with \"%s\" (same oneof)", f->name,
                           other ? other->name : "?");
    }
    if (decode_value(dc, f, j, field_slot(m, f)) != 0)
        return -1;
    *which = f->id;
    return 0;
}

static int null_is_value(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(f->descriptor) == WKT_VALUE;
}

static int decode_field(struct decoder *dc, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        const json_t *j)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return field_is_map(m->descriptor, f) ? decode_map(dc, m, f, j)
                                              : decode_repeated(dc, m, f, j);
    if (json_is_null(j) && !null_is_value(f))
        return 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return decode_oneof_member(dc, m, f, j);
    if (decode_value(dc, f, j, field_slot(m, f)) != 0)
        return -1;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)field_quantifier(m, f) = 1;
    return 0;
}

/* Decodes the members of object `j` into `m`; "@type" is skipped when
 * `skip_type` (the fields of a message packed in an Any). */
static int decode_fields(struct decoder *dc, ProtobufCMessage *m, const json_t *j, int skip_type)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned char *seen;
    void *iter;
    int rc = 0;

    if (!json_is_object(j))
        return decode_fail(dc, "expected object, got %s", json_kind(j));
    seen = calloc(d->n_fields + 1, 1);
    if (seen == NULL)
        return decode_fail(dc, "out of memory");
    for (iter = json_object_iter((json_t *)j); iter != NULL && rc == 0;
         iter = json_object_iter_next((json_t *)j, iter)) {
        const char *key = json_object_iter_key(iter);
        const ProtobufCFieldDescriptor *f;
        size_t mark;

        if (skip_type && strcmp(key, "@type") == 0)
            continue;
        f = field_by_json_key(d, key);
        mark = path_push_field(dc, f ? f->name : key);
        if (f == NULL)
            rc = decode_fail(dc, "unknown field \"%s\"", key);
        else if (seen[f - d->fields]++)
            rc = decode_fail(dc, "field \"%s\" given twice", f->name);
        else
            rc = decode_field(dc, m, f, json_object_iter_value(iter));
        path_pop(dc, mark);
    }
    free(seen);
    return rc;
}

/* ---- decoding: well-known types ---------------------------------------- */

static int decode_duration(struct decoder *dc, ProtobufCMessage *m, const json_t *j)
{
    Google__Protobuf__Duration *dur = (Google__Protobuf__Duration *)m;
    long long s;
    int n;

    if (!json_is_string(j))
        return decode_fail(dc, "expected string, got %s", json_kind(j));
    if (pbjson_parse_duration(json_string_value(j), &s, &n) != 0)
        return decode_fail(dc, "invalid duration \"%s\"", json_string_value(j));
    dur->seconds = s;
    dur->nanos = n;
    return 0;
}

static int decode_timestamp(struct decoder *dc, ProtobufCMessage *m, const json_t *j)
{
    Google__Protobuf__Timestamp *ts = (Google__Protobuf__Timestamp *)m;
    long long s;
    int n;

    if (!json_is_string(j))
        return decode_fail(dc, "expected string, got %s", json_kind(j));
    if (parse_timestamp(json_string_value(j), &s, &n) != 0)
        return decode_fail(dc, "invalid timestamp \"%s\"", json_string_value(j));
    ts->seconds = s;
    ts->nanos = n;
    return 0;
}

static int decode_struct_value(struct decoder *dc, ProtobufCMessage *m, const json_t *j)
{
    Google__Protobuf__Value *v = (Google__Protobuf__Value *)m;
    ProtobufCMessage *sub;

    switch (json_typeof(j)) {
    case JSON_NULL:
        v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        v->bool_value = json_is_true(j);
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        return 0;
    case JSON_INTEGER:
    case JSON_REAL:
        v->number_value = json_number_value(j);
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        return 0;
    case JSON_STRING:
        if (decode_string(dc, j, &v->string_value) != 0)
            return -1;
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        return 0;
    case JSON_OBJECT:
        if (decode_message(dc, &google__protobuf__struct__descriptor, j, &sub) != 0)
            return -1;
        v->struct_value = (Google__Protobuf__Struct *)sub;
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        return 0;
    case JSON_ARRAY:
        if (decode_message(dc, &google__protobuf__list_value__descriptor, j, &sub) != 0)
            return -1;
        v->list_value = (Google__Protobuf__ListValue *)sub;
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        return 0;
    }
    return decode_fail(dc, "unsupported JSON value");
}

/* "fooBar,baz" -> paths ["foo_bar", "baz"]. */
static int decode_field_mask(struct decoder *dc, ProtobufCMessage *m, const json_t *j)
{
    const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
    size_t *count = field_quantifier(m, f);
    const char *s, *p;
    char **paths;
    size_t n = 1;

    if (!json_is_string(j))
        return decode_fail(dc, "expected string, got %s", json_kind(j));
    s = json_string_value(j);
    if (*s == '\0')
        return 0;
    for (p = s; *p; p++)
        n += *p == ',';
    paths = calloc(n, sizeof(*paths));
    if (paths == NULL)
        return decode_fail(dc, "out of memory");
    *(char ***)field_slot(m, f) = paths;
    *count = 0;
    for (p = s; *count < n; p++) {
        size_t len = strcspn(p, ","), i, o = 0;
        char *out = malloc(len * 2 + 1);
        if (out == NULL)
            return decode_fail(dc, "out of memory");
        for (i = 0; i < len; i++) {
            if (p[i] >= 'A' && p[i] <= 'Z') {
                out[o++] = '_';
                out[o++] = (char)(p[i] - 'A' + 'a');
            } else {
                out[o++] = p[i];
            }
        }
        out[o] = '\0';
        paths[(*count)++] = out;
        p += len;
    }
    return 0;
}

static int decode_any_payload(struct decoder *dc, const ProtobufCMessageDescriptor *inner,
                              const json_t *j, ProtobufCMessage **out)
{
    const char *key;
    json_t *value;
    size_t mark;
    int rc;

    if (wkt_of(inner) == WKT_NONE) {
        ProtobufCMessage *sub = message_new(inner);
        if (sub == NULL)
            return decode_fail(dc, "out of memory");
        if (decode_fields(dc, sub, j, 1) != 0) {
            protobuf_c_message_free_unpacked(sub, NULL);
            return -1;
        }
        *out = sub;
        return 0;
    }
    json_object_foreach((json_t *)j, key, value) {
        if (strcmp(key, "@type") != 0 && strcmp(key, "value") != 0) {
            mark = path_push_field(dc, key);
            rc = decode_fail(dc, "unknown field \"%s\"", key);
            path_pop(dc, mark);
            return rc;
        }
    }
    value = json_object_get(j, "value");
    if (value == NULL)
        return decode_fail(dc, "Any of type %s is missing \"value\"", inner->name);
    mark = path_push_field(dc, "value");
    rc = decode_message(dc, inner, value, out);
    path_pop(dc, mark);
    return rc;
}

static int any_store(ProtobufCMessage *any, const char *url, const ProtobufCMessage *payload)
{
    Google__Protobuf__Any *a = (Google__Protobuf__Any *)any;
    size_t len = protobuf_c_message_get_packed_size(payload);
    uint8_t *buf = malloc(len ? len : 1);
    char *type_url = strdup(url);

    if (buf == NULL || type_url == NULL) {
        free(buf);
        free(type_url);
        return -1;
    }
    protobuf_c_message_pack(payload, buf);
    a->type_url = type_url;
    a->value.data = buf;
    a->value.len = len;
    return 0;
}

static int decode_any(struct decoder *dc, ProtobufCMessage *m, const json_t *j)
{
    const ProtobufCMessageDescriptor *inner;
    const json_t *type;
    ProtobufCMessage *payload;
    const char *url;
    size_t mark;
    int rc;

    if (!json_is_object(j))
        return decode_fail(dc, "expected object, got %s", json_kind(j));
    type = json_object_get(j, "@type");
    if (type == NULL)
        return decode_fail(dc, "Any is missing \"@type\"");
    mark = path_push_field(dc, "@type");
    if (!json_is_string(type)) {
        rc = decode_fail(dc, "expected string, got %s", json_kind(type));
        path_pop(dc, mark);
        return rc;
    }
    url = json_string_value(type);
    inner = strchr(url, '/') ? pbjson_type_lookup(url) : NULL;
    if (inner == NULL) {
        rc = decode_fail(dc, "unknown type \"%s\"", url);
        path_pop(dc, mark);
        return rc;
    }
    path_pop(dc, mark);
    if (decode_any_payload(dc, inner, j, &payload) != 0)
        return -1;
    rc = any_store(m, url, payload);
    protobuf_c_message_free_unpacked(payload, NULL);
    return rc != 0 ? decode_fail(dc, "out of memory") : 0;
}

static int decode_message_body(struct decoder *dc, ProtobufCMessage *m, const json_t *j)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    switch (wkt_of(d)) {
    case WKT_ANY:
        return decode_any(dc, m, j);
    case WKT_DURATION:
        return decode_duration(dc, m, j);
    case WKT_TIMESTAMP:
        return decode_timestamp(dc, m, j);
    case WKT_WRAPPER:
        if (json_is_null(j))
            return decode_fail(dc, "expected %s, got null", d->short_name);
        return decode_value(dc, &d->fields[0], j, field_slot(m, &d->fields[0]));
    case WKT_STRUCT:
        if (!json_is_object(j))
            return decode_fail(dc, "expected object, got %s", json_kind(j));
        return decode_map(dc, m, &d->fields[0], j);
    case WKT_VALUE:
        return decode_struct_value(dc, m, j);
    case WKT_LIST_VALUE:
        if (!json_is_array(j))
            return decode_fail(dc, "expected array, got %s", json_kind(j));
        return decode_repeated(dc, m, &d->fields[0], j);
    case WKT_FIELD_MASK:
        return decode_field_mask(dc, m, j);
    case WKT_NONE:
        break;
    }
    return decode_fields(dc, m, j, 0);
}

static int decode_message(struct decoder *dc, const ProtobufCMessageDescriptor *d,
                          const json_t *j, ProtobufCMessage **out)
{
    ProtobufCMessage *m = message_new(d);

    if (m == NULL)
        return decode_fail(dc, "out of memory");
    if (decode_message_body(dc, m, j) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = m;
    return 0;
}

int pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json, const char *path,
                  ProtobufCMessage **out, char *err, size_t errlen)
{
    struct decoder dc;

    dc.err = err;
    dc.errlen = errlen;
    dc.path_len = 0;
    dc.path[0] = '\0';
    if (path != NULL && *path != '\0')
        path_append(&dc, "%s", path, 0);
    if (desc == NULL || json == NULL || out == NULL)
        return decode_fail(&dc, "missing type or input");
    return decode_message(&dc, desc, json, out);
}

/* ---- encoding ----------------------------------------------------------- */

struct encoder {
    unsigned flags; /* PBJSON_* */
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static json_t *encode_fail(struct encoder *ec, const char *fmt, ...)
{
    va_list ap;

    if (ec->err != NULL && ec->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(ec->err, ec->errlen, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static json_t *encode_message(struct encoder *ec, const ProtobufCMessage *m);

static json_t *encode_double(struct encoder *ec, double x)
{
    json_t *j;

    if (isnan(x))
        j = json_string("NaN");
    else if (isinf(x))
        j = json_string(x > 0 ? "Infinity" : "-Infinity");
    else if (x == trunc(x) && fabs(x) < DOUBLE_EXACT_INT_LIMIT && !(x == 0 && signbit(x)))
        j = json_integer((json_int_t)x);
    else
        j = json_real(x);
    return j ? j : encode_fail(ec, "out of memory");
}

/* A float printed with the fewest digits that read back as the same float. */
static json_t *encode_float(struct encoder *ec, float f)
{
    char buf[32];
    int precision;

    if (!isfinite(f))
        return encode_double(ec, f);
    for (precision = 6; precision < 9; precision++) {
        snprintf(buf, sizeof(buf), "%.*g", precision, (double)f);
        if (strtof(buf, NULL) == f)
            return encode_double(ec, strtod(buf, NULL));
    }
    return encode_double(ec, (double)f);
}

static json_t *encode_string(struct encoder *ec, const char *s)
{
    json_t *j = json_string(s ? s : "");

    return j ? j : encode_fail(ec, "string is not valid UTF-8");
}

static json_t *encode_bytes(struct encoder *ec, const ProtobufCBinaryData *b)
{
    char *text = base64_encode(b->data, b->len);
    json_t *j;

    if (text == NULL)
        return encode_fail(ec, "out of memory");
    j = json_string(text);
    free(text);
    return j;
}

static json_t *encode_enum(const ProtobufCEnumDescriptor *ed, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(ed, value);

    return v ? json_string(v->name) : json_integer(value);
}

static json_t *encode_int64_text(long long v, int is_unsigned)
{
    char buf[32];

    if (is_unsigned)
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    else
        snprintf(buf, sizeof(buf), "%lld", v);
    return json_string(buf);
}

/* An unset (NULL) sub-message prints as its type's default value. */
static json_t *encode_submessage(struct encoder *ec, const ProtobufCMessageDescriptor *d,
                                 const ProtobufCMessage *sub)
{
    ProtobufCMessage *tmp;
    json_t *j;

    if (sub != NULL)
        return encode_message(ec, sub);
    tmp = message_new(d);
    if (tmp == NULL)
        return encode_fail(ec, "out of memory");
    j = encode_message(ec, tmp);
    protobuf_c_message_free_unpacked(tmp, NULL);
    return j;
}

static json_t *encode_value(struct encoder *ec, const ProtobufCFieldDescriptor *f,
                            const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return encode_int64_text(*(const int64_t *)slot, 0);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return encode_int64_text((long long)*(const uint64_t *)slot, 1);
    case PROTOBUF_C_TYPE_FLOAT:
        return encode_float(ec, *(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return encode_double(ec, *(const double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM:
        return encode_enum(f->descriptor, *(const int *)slot);
    case PROTOBUF_C_TYPE_STRING:
        return encode_string(ec, *(char *const *)slot);
    case PROTOBUF_C_TYPE_BYTES:
        return encode_bytes(ec, slot);
    case PROTOBUF_C_TYPE_MESSAGE:
        return encode_submessage(ec, f->descriptor, *(ProtobufCMessage *const *)slot);
    }
    return encode_fail(ec, "unsupported field type");
}

static json_t *encode_repeated(struct encoder *ec, const ProtobufCMessage *m,
                               const ProtobufCFieldDescriptor *f)
{
    size_t n = *(const size_t *)field_quantifier_const(m, f), i, esz = element_size(f->type);
    const char *arr = *(char *const *)field_slot_const(m, f);
    json_t *out = json_array();

    for (i = 0; out != NULL && i < n; i++) {
        json_t *v = encode_value(ec, f, arr + i * esz);
        if (v == NULL || json_array_append_new(out, v) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *encode_map_key(struct encoder *ec, const ProtobufCFieldDescriptor *kf,
                              const ProtobufCMessage *entry, char *buf, size_t buflen)
{
    json_t *k;

    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        snprintf(buf, buflen, "%s",
                 *(const protobuf_c_boolean *)field_slot_const(entry, kf) ? "true" : "false");
        return json_true();
    }
    k = encode_value(ec, kf, field_slot_const(entry, kf));
    if (k == NULL)
        return NULL;
    if (json_is_string(k))
        snprintf(buf, buflen, "%s", json_string_value(k));
    else
        snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(k));
    return k;
}

static json_t *encode_map(struct encoder *ec, const ProtobufCMessage *m,
                          const ProtobufCFieldDescriptor *f)
{
    size_t n = *(const size_t *)field_quantifier_const(m, f), i;
    ProtobufCMessage *const *entries = *(ProtobufCMessage **const *)field_slot_const(m, f);
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    json_t *out = json_object();

    for (i = 0; out != NULL && i < n; i++) {
        const ProtobufCMessage *e = entries[i];
        char numbuf[32];
        const char *key;
        json_t *k, *v;

        if (e == NULL)
            continue;
        if (ed->fields[0].type == PROTOBUF_C_TYPE_STRING) {
            key = *(char *const *)field_slot_const(e, &ed->fields[0]);
            k = NULL;
        } else {
            k = encode_map_key(ec, &ed->fields[0], e, numbuf, sizeof(numbuf));
            key = numbuf;
            if (k == NULL) {
                json_decref(out);
                return NULL;
            }
        }
        v = encode_value(ec, &ed->fields[1], field_slot_const(e, &ed->fields[1]));
        if (v == NULL || json_object_set_new(out, key ? key : "", v) != 0) {
            json_decref(k);
            json_decref(out);
            return v ? encode_fail(ec, "map key is not valid UTF-8") : NULL;
        }
        json_decref(k);
    }
    return out;
}

static int scalar_is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)slot == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)slot == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)slot == 0 && !signbit(*(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)slot == 0 && !signbit(*(const double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)slot == 0;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)slot == 0;
    case PROTOBUF_C_TYPE_STRING:
        return *(char *const *)slot == NULL || **(char *const *)slot == '\0';
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)slot == NULL;
    }
    return 1;
}

static int field_is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)field_quantifier_const(m, f) == f->id;
    switch (f->label) {
    case PROTOBUF_C_LABEL_REPEATED:
        return *(const size_t *)field_quantifier_const(m, f) > 0;
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
            return *(void *const *)field_slot_const(m, f) != NULL;
        return *(const protobuf_c_boolean *)field_quantifier_const(m, f) != 0;
    case PROTOBUF_C_LABEL_REQUIRED:
        return 1;
    case PROTOBUF_C_LABEL_NONE:
        break;
    }
    return !scalar_is_default(f, field_slot_const(m, f));
}

/* Printed at its default under PBJSON_EMIT_DEFAULTS: no presence to test. */
static int field_prints_default(const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return 0;
    return f->label == PROTOBUF_C_LABEL_REPEATED ||
           (f->label == PROTOBUF_C_LABEL_NONE && f->type != PROTOBUF_C_TYPE_MESSAGE);
}

static json_t *encode_fields(struct encoder *ec, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *out = json_object();
    unsigned i;

    if (out == NULL)
        return encode_fail(ec, "out of memory");
    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        json_t *v;

        if (!field_is_present(m, f) &&
            !((ec->flags & PBJSON_EMIT_DEFAULTS) && field_prints_default(f)))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            v = field_is_map(d, f) ? encode_map(ec, m, f) : encode_repeated(ec, m, f);
        else
            v = encode_value(ec, f, field_slot_const(m, f));
        if (v == NULL || json_object_set_new(out, f->name, v) != 0) {
            json_decref(out);
            return v ? encode_fail(ec, "out of memory") : NULL;
        }
    }
    return out;
}

static json_t *encode_duration(struct encoder *ec, const ProtobufCMessage *m)
{
    const Google__Protobuf__Duration *dur = (const Google__Protobuf__Duration *)m;
    char buf[64];

    if (dur->seconds < -DURATION_MAX_SECONDS || dur->seconds > DURATION_MAX_SECONDS ||
        dur->nanos <= -NANOS_PER_SECOND || dur->nanos >= NANOS_PER_SECOND ||
        (dur->seconds > 0 && dur->nanos < 0) || (dur->seconds < 0 && dur->nanos > 0))
        return encode_fail(ec, "invalid duration (%lld s, %d ns)", (long long)dur->seconds,
                           (int)dur->nanos);
    return json_string(pbjson_format_duration(dur->seconds, dur->nanos, buf, sizeof(buf)));
}

static json_t *encode_timestamp(struct encoder *ec, const ProtobufCMessage *m)
{
    const Google__Protobuf__Timestamp *ts = (const Google__Protobuf__Timestamp *)m;
    char buf[64];

    if (format_timestamp(ts->seconds, ts->nanos, buf, sizeof(buf)) != 0)
        return encode_fail(ec, "invalid timestamp (%lld s, %d ns)", (long long)ts->seconds,
                           (int)ts->nanos);
    return json_string(buf);
}

static json_t *encode_struct_value(struct encoder *ec, const ProtobufCMessage *m)
{
    const Google__Protobuf__Value *v = (const Google__Protobuf__Value *)m;

    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        return encode_double(ec, v->number_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        return encode_string(ec, v->string_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        return json_boolean(v->bool_value);
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        return encode_submessage(ec, &google__protobuf__struct__descriptor,
                                 &v->struct_value->base);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
        return encode_submessage(ec, &google__protobuf__list_value__descriptor,
                                 &v->list_value->base);
    case GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE:
    case GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET:
    default:
        break;
    }
    return json_null();
}

/* paths ["foo_bar", "baz"] -> "fooBar,baz". */
static json_t *encode_field_mask(struct encoder *ec, const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
    size_t n = *(const size_t *)field_quantifier_const(m, f), i, total = 1, o = 0;
    char *const *paths = *(char **const *)field_slot_const(m, f);
    char *text;
    json_t *j;

    for (i = 0; i < n; i++)
        total += strlen(paths[i]) + 1;
    text = malloc(total);
    if (text == NULL)
        return encode_fail(ec, "out of memory");
    for (i = 0; i < n; i++) {
        const char *p;
        int upper_next = 0;
        if (i > 0)
            text[o++] = ',';
        for (p = paths[i]; *p; p++) {
            if (*p == '_') {
                upper_next = 1;
                continue;
            }
            text[o++] = upper_next && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
            upper_next = 0;
        }
    }
    text[o] = '\0';
    j = encode_string(ec, text);
    free(text);
    return j;
}

/* Copies the members of `fields` after "@type" in `out`; consumes `fields`. */
static json_t *any_merge_fields(struct encoder *ec, json_t *out, json_t *fields)
{
    const char *key;
    json_t *value;

    json_object_foreach(fields, key, value) {
        if (json_object_set(out, key, value) != 0) {
            json_decref(fields);
            json_decref(out);
            return encode_fail(ec, "out of memory");
        }
    }
    json_decref(fields);
    return out;
}

static json_t *encode_any(struct encoder *ec, const ProtobufCMessage *m)
{
    const Google__Protobuf__Any *a = (const Google__Protobuf__Any *)m;
    const ProtobufCMessageDescriptor *inner;
    ProtobufCMessage *payload;
    json_t *body, *out;

    if ((a->type_url == NULL || *a->type_url == '\0') && a->value.len == 0)
        return json_object();
    inner = pbjson_type_lookup(a->type_url);
    if (inner == NULL)
        return encode_fail(ec, "unknown type \"%s\"", a->type_url ? a->type_url : "");
    payload = protobuf_c_message_unpack(inner, NULL, a->value.len, a->value.data);
    if (payload == NULL)
        return encode_fail(ec, "cannot parse Any value of type %s", inner->name);
    body = encode_message(ec, payload);
    protobuf_c_message_free_unpacked(payload, NULL);
    if (body == NULL)
        return NULL;
    out = json_object();
    if (out == NULL || json_object_set_new(out, "@type", encode_string(ec, a->type_url)) != 0) {
        json_decref(out);
        json_decref(body);
        return encode_fail(ec, "out of memory");
    }
    if (wkt_of(inner) != WKT_NONE) {
        json_object_set_new(out, "value", body);
        return out;
    }
    return any_merge_fields(ec, out, body);
}

static json_t *encode_message(struct encoder *ec, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    switch (wkt_of(d)) {
    case WKT_ANY:
        return encode_any(ec, m);
    case WKT_DURATION:
        return encode_duration(ec, m);
    case WKT_TIMESTAMP:
        return encode_timestamp(ec, m);
    case WKT_WRAPPER:
        return encode_value(ec, &d->fields[0], field_slot_const(m, &d->fields[0]));
    case WKT_STRUCT:
        return encode_map(ec, m, &d->fields[0]);
    case WKT_VALUE:
        return encode_struct_value(ec, m);
    case WKT_LIST_VALUE:
        return encode_repeated(ec, m, &d->fields[0]);
    case WKT_FIELD_MASK:
        return encode_field_mask(ec, m);
    case WKT_NONE:
        break;
    }
    return encode_fields(ec, m);
}

json_t *pbjson_encode_ex(const ProtobufCMessage *msg, unsigned flags, char *err, size_t errlen)
{
    struct encoder ec = { flags, err, errlen };

    if (msg == NULL)
        return encode_fail(&ec, "no message");
    return encode_message(&ec, msg);
}

json_t *pbjson_encode(const ProtobufCMessage *msg, char *err, size_t errlen)
{
    return pbjson_encode_ex(msg, 0, err, errlen);
}

/* ---- Any helpers --------------------------------------------------------- */

int pbjson_any_pack(ProtobufCMessage *any, const ProtobufCMessage *msg)
{
    char url[512];

    if (any == NULL || msg == NULL || wkt_of(any->descriptor) != WKT_ANY)
        return -1;
    snprintf(url, sizeof(url), "%s%s", PBJSON_TYPE_URL_PREFIX, msg->descriptor->name);
    return any_store(any, url, msg);
}

int pbjson_any_unpack(const ProtobufCMessage *any, ProtobufCMessage **out, char *err,
                      size_t errlen)
{
    const Google__Protobuf__Any *a = (const Google__Protobuf__Any *)any;
    const ProtobufCMessageDescriptor *inner;
    ProtobufCMessage *m;

    if (any == NULL || out == NULL || wkt_of(any->descriptor) != WKT_ANY) {
        snprintf(err, errlen, "not a google.protobuf.Any");
        return -1;
    }
    inner = pbjson_type_lookup(a->type_url);
    if (inner == NULL) {
        snprintf(err, errlen, "unknown type \"%s\"", a->type_url ? a->type_url : "");
        return -1;
    }
    m = protobuf_c_message_unpack(inner, NULL, a->value.len, a->value.data);
    if (m == NULL) {
        snprintf(err, errlen, "cannot parse Any value of type %s", inner->name);
        return -1;
    }
    *out = m;
    return 0;
}
