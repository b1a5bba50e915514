/*
 * test_pbjson.c: the proto3 JSON mapping (pbjson.h) over real Envoy and
 * well-known message types: round trips, special forms and exact errors.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "xdsnode/pbjson.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#define CLUSTER (&envoy__config__cluster__v3__cluster__descriptor)
#define BOOTSTRAP (&envoy__config__bootstrap__v3__bootstrap__descriptor)
#define ANY (&google__protobuf__any__descriptor)
#define HPO_URL "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);

    cr_assert_not_null(j, "bad test JSON: %s: %s", text, jerr.text);
    return j;
}

static ProtobufCMessage *decode_ok(const ProtobufCMessageDescriptor *d, const char *text)
{
    char err[512] = "";
    ProtobufCMessage *m = NULL;
    json_t *j = parse(text);
    int rc = pbjson_decode(d, j, "", &m, err, sizeof(err));

    json_decref(j);
    cr_assert_eq(rc, 0, "decode %s failed: %s", text, err);
    cr_assert_not_null(m);
    return m;
}

static json_t *encode_ok(const ProtobufCMessage *m)
{
    char err[512] = "";
    json_t *j = pbjson_encode(m, err, sizeof(err));

    cr_assert_not_null(j, "encode failed: %s", err);
    return j;
}

static void assert_json(json_t *got, const char *expected_text)
{
    json_t *expected = parse(expected_text);
    char *dump = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
    int same = json_equal(got, expected);

    json_decref(expected);
    cr_assert(same, "got %s, expected %s", dump, expected_text);
    free(dump);
}

/* decode(input) -> encode must equal `expected`; then the message is
 * packed into an Any, unpacked and encoded again, which must equal too. */
static void expect_roundtrip(const ProtobufCMessageDescriptor *d, const char *input,
                             const char *expected)
{
    ProtobufCMessage *m = decode_ok(d, input), *back = NULL;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    json_t *first = encode_ok(m), *second;
    char err[256] = "";

    assert_json(first, expected);
    cr_assert_eq(pbjson_any_pack(&any.base, m), 0);
    cr_assert_eq(pbjson_any_unpack(&any.base, &back, err, sizeof(err)), 0, "%s", err);
    second = encode_ok(back);
    cr_assert(json_equal(first, second), "re-encoded message differs");
    json_decref(first);
    json_decref(second);
    protobuf_c_message_free_unpacked(back, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    free(any.type_url);
    free(any.value.data);
}

static void expect_error_at(const ProtobufCMessageDescriptor *d, const char *input,
                            const char *path, const char *expected)
{
    char err[512] = "";
    ProtobufCMessage *m = NULL;
    json_t *j = parse(input);
    int rc = pbjson_decode(d, j, path, &m, err, sizeof(err));

    json_decref(j);
    cr_assert_eq(rc, -1, "decode %s unexpectedly succeeded", input);
    cr_assert_null(m);
    cr_assert_str_eq(err, expected);
}

static void expect_error(const ProtobufCMessageDescriptor *d, const char *input,
                         const char *expected)
{
    expect_error_at(d, input, NULL, expected);
}

/* ---- round trips ------------------------------------------------------- */

Test(pbjson, cluster_round_trip)
{
    static const char input[] =
        "{\"name\": \"backend\", \"type\": \"STRICT_DNS\", \"connect_timeout\": \"0.250s\","
        " \"lb_policy\": \"LEAST_REQUEST\", \"per_connection_buffer_limit_bytes\": 0,"
        " \"respect_dns_ttl\": true, \"dns_lookup_family\": \"V4_ONLY\","
        " \"alt_stat_name\": \"\", \"ignore_health_on_host_removal\": false,"
        " \"load_assignment\": {\"cluster_name\": \"backend\", \"endpoints\": ["
        "   {\"lb_endpoints\": [{\"endpoint\": {\"address\": {\"socket_address\":"
        "     {\"address\": \"127.0.0.1\", \"port_value\": 8080}}}}]}]},"
        " \"typed_extension_protocol_options\": {\"envoy.extensions.upstreams.http.v3."
        "HttpProtocolOptions\": {\"@type\": \"" HPO_URL "\","
        "   \"explicit_http_config\": {\"http2_protocol_options\": {}}}},"
        " \"metadata\": {\"filter_metadata\": {\"envoy.lb\": {\"canary\": true, \"w\": 1.5}}}}";
    static const char expected[] =
        "{\"name\": \"backend\", \"type\": \"STRICT_DNS\", \"connect_timeout\": \"0.250s\","
        " \"lb_policy\": \"LEAST_REQUEST\", \"per_connection_buffer_limit_bytes\": 0,"
        " \"respect_dns_ttl\": true, \"dns_lookup_family\": \"V4_ONLY\","
        " \"load_assignment\": {\"cluster_name\": \"backend\", \"endpoints\": ["
        "   {\"lb_endpoints\": [{\"endpoint\": {\"address\": {\"socket_address\":"
        "     {\"address\": \"127.0.0.1\", \"port_value\": 8080}}}}]}]},"
        " \"typed_extension_protocol_options\": {\"envoy.extensions.upstreams.http.v3."
        "HttpProtocolOptions\": {\"@type\": \"" HPO_URL "\","
        "   \"explicit_http_config\": {\"http2_protocol_options\": {}}}},"
        " \"metadata\": {\"filter_metadata\": {\"envoy.lb\": {\"canary\": true, \"w\": 1.5}}}}";

    expect_roundtrip(CLUSTER, input, expected);
}

Test(pbjson, cluster_memory_layout)
{
    Envoy__Config__Cluster__V3__Cluster *c = (Envoy__Config__Cluster__V3__Cluster *)decode_ok(
        CLUSTER, "{\"name\": \"a\", \"type\": \"EDS\", \"connect_timeout\": \"-1.5s\","
                 " \"per_connection_buffer_limit_bytes\": 7,"
                 " \"typed_extension_protocol_options\": {\"k\": {\"@type\": \"" HPO_URL "\"}}}");

    cr_assert_str_eq(c->name, "a");
    cr_assert_eq(c->cluster_discovery_type_case,
                 ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE);
    cr_assert_eq(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    cr_assert_eq(c->connect_timeout->seconds, -1);
    cr_assert_eq(c->connect_timeout->nanos, -500000000);
    cr_assert_eq(c->per_connection_buffer_limit_bytes->value, 7);
    cr_assert_eq(c->n_typed_extension_protocol_options, 1);
    cr_assert_str_eq(c->typed_extension_protocol_options[0]->key, "k");
    cr_assert_str_eq(c->typed_extension_protocol_options[0]->value->type_url, HPO_URL);
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

Test(pbjson, camel_case_input_snake_output)
{
    expect_roundtrip(CLUSTER,
                     "{\"connectTimeout\": \"5s\", \"lbPolicy\": \"RING_HASH\","
                     " \"perConnectionBufferLimitBytes\": 32768, \"respectDnsTtl\": true,"
                     " \"loadAssignment\": {\"clusterName\": \"x\"}}",
                     "{\"connect_timeout\": \"5s\", \"lb_policy\": \"RING_HASH\","
                     " \"per_connection_buffer_limit_bytes\": 32768, \"respect_dns_ttl\": true,"
                     " \"load_assignment\": {\"cluster_name\": \"x\"}}");
}

Test(pbjson, enum_by_number_and_unknown_number)
{
    expect_roundtrip(CLUSTER, "{\"lb_policy\": 1}", "{\"lb_policy\": \"LEAST_REQUEST\"}");
    expect_roundtrip(CLUSTER, "{\"lb_policy\": 99}", "{\"lb_policy\": 99}");
}

Test(pbjson, null_means_default)
{
    expect_roundtrip(CLUSTER,
                     "{\"name\": null, \"connect_timeout\": null, \"lb_policy\": null,"
                     " \"typed_extension_protocol_options\": null, \"type\": null,"
                     " \"cluster_type\": {\"name\": \"c\"}}",
                     "{\"cluster_type\": {\"name\": \"c\"}}");
}

Test(pbjson, proto3_defaults_omitted_wrappers_printed)
{
    expect_roundtrip(CLUSTER,
                     "{\"name\": \"\", \"lb_policy\": \"ROUND_ROBIN\", \"respect_dns_ttl\": false,"
                     " \"per_connection_buffer_limit_bytes\": 0, \"connect_timeout\": \"0s\","
                     " \"outlier_detection\": {}}",
                     "{\"per_connection_buffer_limit_bytes\": 0, \"connect_timeout\": \"0s\","
                     " \"outlier_detection\": {}}");
}

Test(pbjson, proto2_optional_has_fields)
{
    const ProtobufCMessageDescriptor *d = &google__protobuf__uninterpreted_option__descriptor;
    Google__Protobuf__UninterpretedOption *u;

    expect_roundtrip(d,
                     "{\"identifier_value\": \"\", \"positive_int_value\": 0,"
                     " \"negative_int_value\": \"-9223372036854775808\","
                     " \"double_value\": 0, \"string_value\": \"\","
                     " \"name\": [{\"name_part\": \"a\", \"is_extension\": true}]}",
                     "{\"name\": [{\"name_part\": \"a\", \"is_extension\": true}],"
                     " \"identifier_value\": \"\", \"positive_int_value\": \"0\","
                     " \"negative_int_value\": \"-9223372036854775808\","
                     " \"double_value\": 0, \"string_value\": \"\"}");
    u = (Google__Protobuf__UninterpretedOption *)decode_ok(d, "{\"positiveIntValue\": \"5\"}");
    cr_assert(u->has_positive_int_value);
    cr_assert_eq(u->positive_int_value, 5);
    cr_assert(!u->has_negative_int_value);
    protobuf_c_message_free_unpacked(&u->base, NULL);
}

Test(pbjson, repeated_scalars_and_enums)
{
    expect_roundtrip(&google__protobuf__source_code_info__location__descriptor,
                     "{\"path\": [1, 2, 2147483647], \"span\": [-1, 0],"
                     " \"leading_detached_comments\": [\"a\", \"\"]}",
                     "{\"path\": [1, 2, 2147483647], \"span\": [-1, 0],"
                     " \"leading_detached_comments\": [\"a\", \"\"]}");
    expect_roundtrip(&envoy__config__core__v3__http_protocol_options__descriptor,
                     "{\"headers_with_underscores_action\": \"REJECT_REQUEST\","
                     " \"max_requests_per_connection\": 4294967295}",
                     "{\"headers_with_underscores_action\": \"REJECT_REQUEST\","
                     " \"max_requests_per_connection\": 4294967295}");
}

Test(pbjson, wrappers_every_scalar_kind)
{
    expect_roundtrip(&google__protobuf__int64_value__descriptor, "\"9223372036854775807\"",
                     "\"9223372036854775807\"");
    expect_roundtrip(&google__protobuf__int64_value__descriptor, "-42", "\"-42\"");
    expect_roundtrip(&google__protobuf__uint64_value__descriptor, "\"18446744073709551615\"",
                     "\"18446744073709551615\"");
    expect_roundtrip(&google__protobuf__uint64_value__descriptor, "0", "\"0\"");
    expect_roundtrip(&google__protobuf__int32_value__descriptor, "\"-12\"", "-12");
    expect_roundtrip(&google__protobuf__int32_value__descriptor, "3.0", "3");
    expect_roundtrip(&google__protobuf__uint32_value__descriptor, "0", "0");
    expect_roundtrip(&google__protobuf__bool_value__descriptor, "false", "false");
    expect_roundtrip(&google__protobuf__string_value__descriptor, "\"h\\u00e9llo\"",
                     "\"h\\u00e9llo\"");
    expect_roundtrip(&google__protobuf__float_value__descriptor, "0.1", "0.1");
    expect_roundtrip(&google__protobuf__double_value__descriptor, "1.5", "1.5");
    expect_roundtrip(&google__protobuf__double_value__descriptor, "1e300", "1e300");
    expect_roundtrip(&google__protobuf__double_value__descriptor, "\"NaN\"", "\"NaN\"");
    expect_roundtrip(&google__protobuf__double_value__descriptor, "\"Infinity\"",
                     "\"Infinity\"");
    expect_roundtrip(&google__protobuf__double_value__descriptor, "\"-Infinity\"",
                     "\"-Infinity\"");
    expect_roundtrip(&google__protobuf__double_value__descriptor, "\"2.5\"", "2.5");
}

Test(pbjson, double_nan_memory)
{
    Google__Protobuf__DoubleValue *v = (Google__Protobuf__DoubleValue *)decode_ok(
        &google__protobuf__double_value__descriptor, "\"NaN\"");

    cr_assert(isnan(v->value));
    protobuf_c_message_free_unpacked(&v->base, NULL);
}

Test(pbjson, bytes_base64)
{
    const ProtobufCMessageDescriptor *d = &google__protobuf__bytes_value__descriptor;
    Google__Protobuf__BytesValue *b;

    expect_roundtrip(d, "\"aGVsbG8=\"", "\"aGVsbG8=\"");
    expect_roundtrip(d, "\"aGVsbG8\"", "\"aGVsbG8=\"");
    expect_roundtrip(d, "\"\"", "\"\"");
    expect_roundtrip(d, "\"-_8=\"", "\"+/8=\"");
    b = (Google__Protobuf__BytesValue *)decode_ok(d, "\"AAEC/w==\"");
    cr_assert_eq(b->value.len, 4);
    cr_assert_eq(memcmp(b->value.data, "\x00\x01\x02\xff", 4), 0);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    expect_error(d, "\"a!==\"", "invalid base64");
    expect_error(d, "\"a\"", "invalid base64");
}

Test(pbjson, struct_value_list)
{
    expect_roundtrip(&google__protobuf__struct__descriptor,
                     "{\"a\": 1, \"b\": [true, null, \"x\", {\"c\": -1.5}], \"d\": {}, \"e\": []}",
                     "{\"a\": 1, \"b\": [true, null, \"x\", {\"c\": -1.5}], \"d\": {}, \"e\": []}");
    expect_roundtrip(&google__protobuf__value__descriptor, "null", "null");
    expect_roundtrip(&google__protobuf__value__descriptor, "\"s\"", "\"s\"");
    expect_roundtrip(&google__protobuf__list_value__descriptor, "[1, [2]]", "[1, [2]]");
    expect_error(&google__protobuf__struct__descriptor, "[]", "expected object, got array");
    expect_error(&google__protobuf__list_value__descriptor, "{}", "expected array, got object");
}

Test(pbjson, metadata_map_of_struct)
{
    Envoy__Config__Core__V3__Metadata *md;

    expect_roundtrip(&envoy__config__core__v3__metadata__descriptor,
                     "{\"filterMetadata\": {\"envoy.lb\": {\"version\": \"v1\"}, \"x\": {}}}",
                     "{\"filter_metadata\": {\"envoy.lb\": {\"version\": \"v1\"}, \"x\": {}}}");
    md = (Envoy__Config__Core__V3__Metadata *)decode_ok(
        &envoy__config__core__v3__metadata__descriptor,
        "{\"filter_metadata\": {\"k\": {\"n\": 2}}}");
    cr_assert_eq(md->n_filter_metadata, 1);
    cr_assert_str_eq(md->filter_metadata[0]->key, "k");
    cr_assert_eq(md->filter_metadata[0]->value->n_fields, 1);
    cr_assert_eq(md->filter_metadata[0]->value->fields[0]->value->number_value, 2.0);
    protobuf_c_message_free_unpacked(&md->base, NULL);
}

Test(pbjson, timestamp)
{
    const ProtobufCMessageDescriptor *d = &google__protobuf__timestamp__descriptor;
    Google__Protobuf__Timestamp *ts;

    expect_roundtrip(d, "\"2026-11-30T08:00:00.123Z\"", "\"2026-11-30T08:00:00.123Z\"");
    expect_roundtrip(d, "\"1970-01-01T00:00:00Z\"", "\"1970-01-01T00:00:00Z\"");
    expect_roundtrip(d, "\"2024-02-29T23:59:59.000001+01:00\"",
                     "\"2024-02-29T22:59:59.000001Z\"");
    expect_roundtrip(d, "\"0001-01-01T00:00:00.000000001Z\"",
                     "\"0001-01-01T00:00:00.000000001Z\"");
    expect_roundtrip(d, "\"1969-12-31T23:59:59Z\"", "\"1969-12-31T23:59:59Z\"");
    ts = (Google__Protobuf__Timestamp *)decode_ok(d, "\"2000-01-01T00:00:00Z\"");
    cr_assert_eq(ts->seconds, 946684800);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    expect_error(d, "\"2023-02-29T00:00:00Z\"", "invalid timestamp \"2023-02-29T00:00:00Z\"");
    expect_error(d, "\"2023-01-01 00:00:00Z\"", "invalid timestamp \"2023-01-01 00:00:00Z\"");
    expect_error(d, "\"2023-01-01T00:00:00\"", "invalid timestamp \"2023-01-01T00:00:00\"");
    expect_error(d, "5", "expected string, got number");
}

Test(pbjson, nested_any)
{
    expect_roundtrip(ANY,
                     "{\"@type\": \"type.googleapis.com/google.protobuf.Any\", \"value\":"
                     " {\"@type\": \"type.googleapis.com/google.protobuf.Duration\","
                     "  \"value\": \"1.5s\"}}",
                     "{\"@type\": \"type.googleapis.com/google.protobuf.Any\", \"value\":"
                     " {\"@type\": \"type.googleapis.com/google.protobuf.Duration\","
                     "  \"value\": \"1.500s\"}}");
    expect_roundtrip(ANY,
                     "{\"@type\": \"" HPO_URL "\", \"http_filters\": [{\"name\": \"router\","
                     " \"typed_config\": {\"@type\": \"type.googleapis.com/envoy.extensions."
                     "filters.http.router.v3.Router\", \"suppressEnvoyHeaders\": true}}]}",
                     "{\"@type\": \"" HPO_URL "\", \"http_filters\": [{\"name\": \"router\","
                     " \"typed_config\": {\"@type\": \"type.googleapis.com/envoy.extensions."
                     "filters.http.router.v3.Router\", \"suppress_envoy_headers\": true}}]}");
    expect_roundtrip(ANY, "{\"@type\": \"type.googleapis.com/google.protobuf.Empty\"}",
                     "{\"@type\": \"type.googleapis.com/google.protobuf.Empty\"}");
}

Test(pbjson, any_type_comes_first)
{
    ProtobufCMessage *m = decode_ok(ANY, "{\"common_http_protocol_options\":"
                                         " {\"idle_timeout\": \"60s\"}, \"@type\": \"" HPO_URL "\"}");
    json_t *j = encode_ok(m);
    void *it = json_object_iter(j);

    cr_assert_str_eq(json_object_iter_key(it), "@type");
    cr_assert_str_eq(json_string_value(json_object_iter_value(it)), HPO_URL);
    it = json_object_iter_next(j, it);
    cr_assert_str_eq(json_object_iter_key(it), "common_http_protocol_options");
    json_decref(j);
    protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, any_unpack_gives_typed_message)
{
    Google__Protobuf__Any *any = (Google__Protobuf__Any *)decode_ok(
        ANY, "{\"@type\": \"" HPO_URL "\", \"explicit_http_config\":"
             " {\"http_protocol_options\": {}}}");
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *hpo = NULL;
    char err[128];

    cr_assert_eq(pbjson_any_unpack(&any->base, (ProtobufCMessage **)&hpo, err, sizeof(err)), 0);
    cr_assert_eq(hpo->base.descriptor,
                 &envoy__extensions__upstreams__http__v3__http_protocol_options__descriptor);
    cr_assert_not_null(hpo->explicit_http_config);
    protobuf_c_message_free_unpacked(&hpo->base, NULL);
    protobuf_c_message_free_unpacked(&any->base, NULL);
}

Test(pbjson, any_unknown_type_on_encode_and_unpack)
{
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    ProtobufCMessage *out = NULL;
    char err[128] = "";

    any.type_url = "type.googleapis.com/x.Y";
    cr_assert_null(pbjson_encode(&any.base, err, sizeof(err)));
    cr_assert_str_eq(err, "unknown type \"type.googleapis.com/x.Y\"");
    cr_assert_eq(pbjson_any_unpack(&any.base, &out, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "unknown type \"type.googleapis.com/x.Y\"");
    any.type_url = "type.googleapis.com/google.protobuf.Duration";
    any.value.data = (uint8_t *)"\xff";
    any.value.len = 1;
    cr_assert_null(pbjson_encode(&any.base, err, sizeof(err)));
    cr_assert_str_eq(err, "cannot parse Any value of type google.protobuf.Duration");
}

Test(pbjson, type_lookup)
{
    cr_assert_eq(pbjson_type_lookup("envoy.config.cluster.v3.Cluster"), CLUSTER);
    cr_assert_eq(pbjson_type_lookup("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
                 CLUSTER);
    cr_assert_eq(pbjson_type_lookup("google.protobuf.Struct"),
                 &google__protobuf__struct__descriptor);
    cr_assert_null(pbjson_type_lookup("x.Y"));
    cr_assert_null(pbjson_type_lookup(""));
    cr_assert_null(pbjson_type_lookup(NULL));
}

/* ---- Duration ---------------------------------------------------------- */

static void expect_duration(const char *text, long long s, int n)
{
    long long gs = 0;
    int gn = 0;

    cr_assert_eq(pbjson_parse_duration(text, &gs, &gn), 0, "%s", text);
    cr_assert_eq(gs, s, "%s", text);
    cr_assert_eq(gn, n, "%s", text);
}

Test(pbjson, duration_parse)
{
    long long s;
    int n;

    expect_duration("5s", 5, 0);
    expect_duration("-1.5s", -1, -500000000);
    expect_duration("-0.5s", 0, -500000000);
    expect_duration("0.000000001s", 0, 1);
    expect_duration("1.25s", 1, 250000000);
    expect_duration("315576000000s", 315576000000LL, 0);
    expect_duration("-315576000000.999999999s", -315576000000LL, -999999999);
    cr_assert_eq(pbjson_parse_duration("5", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("5x", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("1.5.s", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("s", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("1.s", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("1.0000000001s", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("+1s", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("315576000001s", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("99999999999999999999999s", &s, &n), -1);
    cr_assert_eq(pbjson_parse_duration("5s ", &s, &n), -1);
}

Test(pbjson, duration_format)
{
    char buf[64];

    cr_assert_str_eq(pbjson_format_duration(5, 0, buf, sizeof(buf)), "5s");
    cr_assert_str_eq(pbjson_format_duration(0, 0, buf, sizeof(buf)), "0s");
    cr_assert_str_eq(pbjson_format_duration(0, 250000000, buf, sizeof(buf)), "0.250s");
    cr_assert_str_eq(pbjson_format_duration(1, 1, buf, sizeof(buf)), "1.000000001s");
    cr_assert_str_eq(pbjson_format_duration(1, 1000, buf, sizeof(buf)), "1.000001s");
    cr_assert_str_eq(pbjson_format_duration(-1, -500000000, buf, sizeof(buf)), "-1.500s");
    cr_assert_str_eq(pbjson_format_duration(0, -1, buf, sizeof(buf)), "-0.000000001s");
}

Test(pbjson, duration_json)
{
    const ProtobufCMessageDescriptor *d = &google__protobuf__duration__descriptor;

    expect_roundtrip(d, "\"-1.5s\"", "\"-1.500s\"");
    expect_roundtrip(d, "\"0.000000001s\"", "\"0.000000001s\"");
    expect_roundtrip(d, "\"10s\"", "\"10s\"");
    expect_error(d, "\"5\"", "invalid duration \"5\"");
    expect_error(d, "\"s\"", "invalid duration \"s\"");
    expect_error(d, "\"1.5.s\"", "invalid duration \"1.5.s\"");
    expect_error(d, "\"315576000001s\"", "invalid duration \"315576000001s\"");
    expect_error(d, "5", "expected string, got number");
}

/* ---- errors ------------------------------------------------------------ */

Test(pbjson, error_path_through_lists)
{
    expect_error(BOOTSTRAP,
                 "{\"static_resources\": {\"clusters\": [{}, {}, {\"connect_timeout\": \"5x\"}]}}",
                 "static_resources.clusters[2].connect_timeout: invalid duration \"5x\"");
    expect_error(BOOTSTRAP, "{\"staticResources\": {\"clusters\": [{\"foo\": 1}]}}",
                 "static_resources.clusters[0].foo: unknown field \"foo\"");
    expect_error_at(CLUSTER, "{\"connect_timeout\": \"5x\"}", "clusters[3]",
                    "clusters[3].connect_timeout: invalid duration \"5x\"");
}

Test(pbjson, error_map_key_path)
{
    expect_error(&envoy__config__core__v3__metadata__descriptor,
                 "{\"filter_metadata\": {\"envoy.lb\": []}}",
                 "filter_metadata[\"envoy.lb\"]: expected object, got array");
    expect_error(CLUSTER,
                 "{\"typed_extension_protocol_options\": {\"k\": {\"@type\": \"" HPO_URL "\","
                 " \"bogus\": 1}}}",
                 "typed_extension_protocol_options[\"k\"].bogus: unknown field \"bogus\"");
}

Test(pbjson, error_unknown_field)
{
    expect_error(CLUSTER, "{\"foo\": 1}", "foo: unknown field \"foo\"");
    expect_error(CLUSTER, "{\"@type\": \"x\"}", "@type: unknown field \"@type\"");
    expect_error(CLUSTER, "{\"Name\": \"x\"}", "Name: unknown field \"Name\"");
}

Test(pbjson, error_wrong_types)
{
    expect_error(CLUSTER, "{\"name\": 5}", "name: expected string, got number");
    expect_error(CLUSTER, "{\"respect_dns_ttl\": \"yes\"}",
                 "respect_dns_ttl: expected boolean, got string");
    expect_error(CLUSTER, "{\"load_assignment\": []}",
                 "load_assignment: expected object, got array");
    expect_error(CLUSTER, "{\"health_checks\": {}}", "health_checks: expected array, got object");
    expect_error(CLUSTER, "{\"per_connection_buffer_limit_bytes\": true}",
                 "per_connection_buffer_limit_bytes: expected integer, got boolean");
    expect_error(&google__protobuf__uint32_value__descriptor, "null",
                 "expected UInt32Value, got null");
    expect_error(CLUSTER, "{\"connect_timeout\": 5}",
                 "connect_timeout: expected string, got number");
    expect_error(CLUSTER, "[]", "expected object, got array");
    expect_error(CLUSTER, "{\"health_checks\": [null]}",
                 "health_checks[0]: expected object, got null");
}

Test(pbjson, error_bad_enum)
{
    expect_error(CLUSTER, "{\"lb_policy\": \"FOO\"}",
                 "lb_policy: invalid value \"FOO\" for enum envoy.config.cluster.v3.Cluster.LbPolicy");
    expect_error(CLUSTER, "{\"lb_policy\": true}", "lb_policy: expected string, got boolean");
}

Test(pbjson, error_integers)
{
    const ProtobufCMessageDescriptor *u32 = &google__protobuf__uint32_value__descriptor;
    const ProtobufCMessageDescriptor *i32 = &google__protobuf__int32_value__descriptor;

    expect_error(u32, "-1", "integer out of range");
    expect_error(u32, "4294967296", "integer out of range");
    expect_error(i32, "2147483648", "integer out of range");
    expect_error(i32, "1.5", "invalid integer 1.5");
    expect_error(i32, "\"12x\"", "invalid integer \"12x\"");
    expect_error(&google__protobuf__uint64_value__descriptor, "\"18446744073709551616\"",
                 "integer out of range");
    expect_error(&google__protobuf__uint64_value__descriptor, "\"-1\"", "integer out of range");
    expect_error(&google__protobuf__int64_value__descriptor, "\"9223372036854775808\"",
                 "integer out of range");
    expect_error(&google__protobuf__float_value__descriptor, "1e39", "float out of range");
    expect_error(&google__protobuf__double_value__descriptor, "\"abc\"",
                 "invalid number \"abc\"");
    expect_error(CLUSTER, "{\"per_connection_buffer_limit_bytes\": -5}",
                 "per_connection_buffer_limit_bytes: integer out of range");
}

Test(pbjson, error_oneof_twice)
{
    expect_error(CLUSTER, "{\"type\": \"EDS\", \"cluster_type\": {\"name\": \"x\"}}",
                 "cluster_type: field \"cluster_type\" conflicts with \"type\" (same oneof)");
    expect_error(CLUSTER, "{\"connect_timeout\": \"1s\", \"connectTimeout\": \"2s\"}",
                 "connect_timeout: field \"connect_timeout\" given twice");
}

Test(pbjson, error_any)
{
    expect_error(ANY, "{\"@type\": \"type.googleapis.com/x.Y\"}",
                 "@type: unknown type \"type.googleapis.com/x.Y\"");
    expect_error(ANY, "{\"name\": \"x\"}", "Any is missing \"@type\"");
    expect_error(ANY, "{\"@type\": 5}", "@type: expected string, got number");
    expect_error(ANY, "{\"@type\": \"envoy.config.cluster.v3.Cluster\"}",
                 "@type: unknown type \"envoy.config.cluster.v3.Cluster\"");
    expect_error(ANY, "{\"@type\": \"type.googleapis.com/google.protobuf.Duration\"}",
                 "Any of type google.protobuf.Duration is missing \"value\"");
    expect_error(ANY,
                 "{\"@type\": \"type.googleapis.com/google.protobuf.Duration\","
                 " \"value\": \"1s\", \"x\": 1}",
                 "x: unknown field \"x\"");
    expect_error(ANY,
                 "{\"@type\": \"type.googleapis.com/google.protobuf.Duration\", \"value\": \"1\"}",
                 "value: invalid duration \"1\"");
    expect_error(CLUSTER, "{\"typed_extension_protocol_options\": {\"k\": {}}}",
                 "typed_extension_protocol_options[\"k\"]: Any is missing \"@type\"");
    expect_error(CLUSTER,
                 "{\"typed_extension_protocol_options\": {\"k\": "
                 "{\"@type\": \"type.googleapis.com/x.Y\"}}}",
                 "typed_extension_protocol_options[\"k\"].@type: unknown type "
                 "\"type.googleapis.com/x.Y\"");
}

Test(pbjson, emit_defaults_flag)
{
    ProtobufCMessage *m = decode_ok(&envoy__config__core__v3__metadata__descriptor, "{}");
    ProtobufCMessage *c = decode_ok(&envoy__config__core__v3__http_protocol_options__descriptor,
                                    "{\"idle_timeout\": \"1s\"}");
    char err[128];
    json_t *j = pbjson_encode_ex(m, PBJSON_EMIT_DEFAULTS, err, sizeof(err));

    assert_json(j, "{\"filter_metadata\": {}, \"typed_filter_metadata\": {}}");
    json_decref(j);
    j = pbjson_encode_ex(c, PBJSON_EMIT_DEFAULTS, err, sizeof(err));
    assert_json(j, "{\"idle_timeout\": \"1s\", \"headers_with_underscores_action\": \"ALLOW\"}");
    json_decref(j);
    protobuf_c_message_free_unpacked(m, NULL);
    protobuf_c_message_free_unpacked(c, NULL);
}
