/* Unit tests: protobuf MergeFrom semantics of pb_merge (--config-yaml). */
#include <criterion/criterion.h>
#include <string.h>

#include "xdsnode/envoy_types.h"
#include "xdsnode/pbjson.h"
#include "xdsnode/pbmerge.h"

static ProtobufCMessage *decode(const char *json)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    ProtobufCMessage *m = NULL;
    char err[512];
    cr_assert_eq(pbjson_decode(PB_BOOTSTRAP_DESC, j, "", &m, err, sizeof(err)), 0, "%s", err);
    json_decref(j);
    return m;
}

static void expect_merge(const char *dst_json, const char *src_json, const char *want_json)
{
    ProtobufCMessage *dst = decode(dst_json), *src = decode(src_json);
    cr_assert_eq(pb_merge(dst, src), 0);
    char err[512];
    json_t *got = pbjson_encode(dst, err, sizeof(err));
    cr_assert_not_null(got, "%s", err);
    json_t *want = json_loads(want_json, 0, NULL);
    char *got_text = json_dumps(got, JSON_COMPACT);
    cr_assert(json_equal(got, want), "got %s", got_text);
    free(got_text);
    json_decref(got);
    json_decref(want);
    protobuf_c_message_free_unpacked(dst, NULL);
    protobuf_c_message_free_unpacked(src, NULL);
}

Test(pbmerge, scalars_replace_messages_merge)
{
    expect_merge("{\"node\":{\"id\":\"a\",\"cluster\":\"c\"}}", "{\"node\":{\"id\":\"b\"}}",
                 "{\"node\":{\"id\":\"b\",\"cluster\":\"c\"}}");
}

Test(pbmerge, repeated_append)
{
    expect_merge("{\"static_resources\":{\"clusters\":[{\"name\":\"a\"}]}}",
                 "{\"static_resources\":{\"clusters\":[{\"name\":\"b\"}]}}",
                 "{\"static_resources\":{\"clusters\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}");
}

Test(pbmerge, oneof_member_replaced_even_with_zero)
{
    expect_merge("{\"admin\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":9901}}}}",
                 "{\"admin\":{\"address\":{\"socket_address\":{\"port_value\":0}}}}",
                 "{\"admin\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":0}}}}");
    expect_merge("{\"admin\":{\"address\":{\"socket_address\":{\"address\":\"::1\",\"port_value\":1}}}}",
                 "{\"admin\":{\"address\":{\"pipe\":{\"path\":\"/tmp/a\"}}}}",
                 "{\"admin\":{\"address\":{\"pipe\":{\"path\":\"/tmp/a\"}}}}");
}

Test(pbmerge, wrappers_and_durations_merge)
{
    expect_merge("{\"static_resources\":{\"clusters\":[]},\"stats_flush_interval\":\"5s\"}",
                 "{\"stats_flush_interval\":\"1.5s\",\"enable_dispatcher_stats\":true}",
                 "{\"static_resources\":{},\"stats_flush_interval\":\"1.500s\",\"enable_dispatcher_stats\":true}");
}

Test(pbmerge, clone_is_deep)
{
    ProtobufCMessage *a = decode("{\"node\":{\"id\":\"x\",\"metadata\":{\"k\":\"v\"}}}");
    ProtobufCMessage *b = pb_clone(a);
    protobuf_c_message_free_unpacked(a, NULL);
    char err[256];
    json_t *j = pbjson_encode(b, err, sizeof(err));
    char *t = json_dumps(j, JSON_COMPACT);
    cr_assert_str_eq(t, "{\"node\":{\"id\":\"x\",\"metadata\":{\"k\":\"v\"}}}");
    free(t);
    json_decref(j);
    protobuf_c_message_free_unpacked(b, NULL);
}
