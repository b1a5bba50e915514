/* Unit tests: the HTTP/2 helpers both codecs share (h2_common.h): which
 * fields HPACK must not index, and trailers as nghttp2 name/value arrays. */
#include <criterion/criterion.h>
#include <string.h>

#include "xdsnode/h2_common.h"
#include "xdsnode/http_headers.h"

static uint8_t flags_of(const char *name) { return h2_field_flags(name, strlen(name)); }

Test(h2_common, per_message_ids_and_credentials_are_never_indexed)
{
    const char *never[] = {"x-request-id", "traceparent", "tracestate", "x-b3-traceid",
                           "x-b3-spanid", "x-b3-parentspanid", "uber-trace-id",
                           "x-amzn-trace-id", "x-cloud-trace-context", "x-datadog-trace-id",
                           "x-datadog-parent-id", "x-envoy-upstream-service-time",
                           "authorization", "proxy-authorization"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        cr_assert_eq(flags_of(never[i]), NGHTTP2_NV_FLAG_NO_INDEX, "%s", never[i]);
    const char *indexed[] = {"date", "content-type", "user-agent", "x-forwarded-proto",
                             "x-envoy-expected-rq-timeout-ms", "x-request-ix", "", "server",
                             "a-name-longer-than-any-listed-one-at-all"};
    for (size_t i = 0; i < sizeof(indexed) / sizeof(indexed[0]); i++)
        cr_assert_eq(flags_of(indexed[i]), NGHTTP2_NV_FLAG_NONE, "%s", indexed[i]);
}

Test(h2_common, trailers_lower_cased_only_when_they_may_need_it)
{
    header_list h;
    header_list_init(&h);
    header_list_add(&h, "grpc-status", 11, "0", 1);
    header_list_add_name(&h, "Grpc-Message", 12); /* an HTTP/1.1 peer's trailer */
    header_list_add_value(&h, "ok", 2);
    header_list_add_name(&h, "Connection", 10); /* hop-by-hop: dropped */
    header_list_add_value(&h, "close", 5);
    header_list_add_name(&h, "Authorization", 13);
    header_list_add_value(&h, "secret", 6);
    nghttp2_nv nv[8];
    size_t n = h2_trailer_nv(&h, 0, nv, 8);
    cr_assert_eq(n, 3);
    cr_assert_eq(nv[0].namelen, 11);
    cr_assert(memcmp(nv[0].name, "grpc-status", 11) == 0);
    cr_assert(memcmp(nv[1].name, "grpc-message", 12) == 0);
    cr_assert(memcmp(nv[2].name, "authorization", 13) == 0);
    cr_assert_eq(nv[2].flags, NGHTTP2_NV_FLAG_NO_INDEX);
    cr_assert_eq(nv[0].flags, NGHTTP2_NV_FLAG_NONE);
    cr_assert_eq(h2_trailer_nv(&h, 1, nv, 1), 1); /* from field 1, at most 1 */
    header_list_free(&h);
}
