/* Unit tests: header lists fed in pieces, hop-by-hop rules, Keep-Alive
 * parsing, Envoy's local reply bytes, the access log line. */
#include <criterion/criterion.h>
#include <string.h>

#include "xdsnode/access_log.h"
#include "xdsnode/http_headers.h"

Test(headers, pieces_are_joined)
{
    header_list l;
    header_list_init(&l);
    header_list_add_name(&l, "Con", 3);
    header_list_add_name(&l, "tent-Type", 9);
    header_list_add_value(&l, "text/", 5);
    header_list_add_value(&l, "plain", 5);
    header_list_add_name(&l, "X-Empty", 7);
    header_list_add_value(&l, "", 0);
    header_list_add_name(&l, "Host", 4);
    header_list_add_value(&l, "a", 1);
    cr_assert_eq(l.n, 3);
    size_t n;
    const char *v = header_list_get(&l, "content-type", &n);
    cr_assert_eq(n, 10);
    cr_assert_str_eq(v, "text/plain");
    cr_assert_str_eq(header_name(&l, 0), "Content-Type");
    cr_assert_str_eq(header_list_get(&l, "x-empty", &n), "");
    cr_assert_str_eq(header_list_get(&l, "HOST", &n), "a");
    cr_assert_null(header_list_get(&l, "missing", &n));
    header_list_free(&l);
}

Test(headers, hop_by_hop)
{
    const char *conn = "keep-alive, X-Custom";
    size_t cl = strlen(conn);
    cr_assert(header_is_hop_by_hop("Connection", 10, NULL, 0));
    cr_assert(header_is_hop_by_hop("keep-alive", 10, NULL, 0));
    cr_assert(header_is_hop_by_hop("Transfer-Encoding", 17, NULL, 0));
    cr_assert(header_is_hop_by_hop("Upgrade", 7, NULL, 0));
    cr_assert(header_is_hop_by_hop("TE", 2, NULL, 0));
    cr_assert(header_is_hop_by_hop("Proxy-Connection", 16, NULL, 0));
    cr_assert(header_is_hop_by_hop("x-custom", 8, conn, cl), "named by Connection");
    cr_assert_not(header_is_hop_by_hop("x-custo", 7, conn, cl));
    cr_assert_not(header_is_hop_by_hop("Content-Length", 14, conn, cl));
    cr_assert_not(header_is_hop_by_hop("Host", 4, NULL, 0));
}

Test(headers, keepalive_timeout)
{
    cr_assert_eq(header_keepalive_timeout("timeout=5", 9), 5);
    cr_assert_eq(header_keepalive_timeout("timeout=1, max=100", 18), 1);
    cr_assert_eq(header_keepalive_timeout("max=100, timeout=30", 19), 30);
    cr_assert_eq(header_keepalive_timeout("max=100", 7), -1);
    cr_assert_eq(header_keepalive_timeout("timeout=x", 9), -1);
}

Test(headers, header_write_lowercases)
{
    buffer b;
    buffer_init(&b);
    header_write(&b, "X-Foo", 5, "Bar", 3);
    cr_assert_eq(buffer_len(&b), 12);
    cr_assert(memcmp(buffer_start(&b), "x-foo: Bar\r\n", 12) == 0);
    buffer_free(&b);
}

Test(headers, local_reply_overflow_as_envoy)
{
    buffer b;
    buffer_init(&b);
    const char *body = "upstream connect error or disconnect/reset before headers. reset reason: overflow";
    local_reply_write(&b, 503, body, "envoy",
                      "x-envoy-overloaded: true\r\nx-xdsnode-overflow: max_pending_requests\r\n", 0, 0);
    buffer_append(&b, "", 1);
    const char *s = buffer_start(&b);
    cr_assert(strncmp(s, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0, "%s", s);
    cr_assert(strstr(s, "\r\ncontent-length: 81\r\n") != NULL);
    cr_assert(strstr(s, "\r\ncontent-type: text/plain\r\n") != NULL);
    cr_assert(strstr(s, "\r\nserver: envoy\r\n") != NULL);
    cr_assert(strstr(s, "\r\nx-envoy-overloaded: true\r\n") != NULL);
    cr_assert(strstr(s, "\r\nx-xdsnode-overflow: max_pending_requests\r\n") != NULL);
    cr_assert_null(strstr(s, "connection: close"));
    cr_assert(strstr(s, "\r\n\r\nupstream connect error") != NULL);
    buffer_reset(&b);
    local_reply_write(&b, 404, "", "envoy", NULL, 1, 0);
    buffer_append(&b, "", 1);
    cr_assert(strstr(buffer_start(&b), "content-length: 0\r\n") != NULL);
    cr_assert(strstr(buffer_start(&b), "connection: close\r\n") != NULL);
    buffer_free(&b);
}

Test(access_log, envoy_default_format)
{
    access_log_entry e = {
        .start = {1700000000, 123000000},
        .method = "GET", .path = "/a?b", .protocol = "HTTP/1.1",
        .response_code = 503, .response_flags = "UO",
        .bytes_received = 0, .bytes_sent = 81, .duration_ms = 2,
        .upstream_service_time_ms = -1,
        .user_agent = "curl/8", .request_id = "r-1", .authority = "svc", .upstream_host = NULL,
    };
    char line[512];
    access_log_format(&e, line, sizeof(line));
    cr_assert_str_eq(line, "[2023-11-14T22:13:20.123Z] \"GET /a?b HTTP/1.1\" 503 UO 0 81 2 - \"-\" "
                           "\"curl/8\" \"r-1\" \"svc\" \"-\"\n");
    e.response_flags = "";
    e.upstream_service_time_ms = 7;
    e.upstream_host = "10.0.0.1:80";
    access_log_format(&e, line, sizeof(line));
    cr_assert(strstr(line, "\" 503 - 0 81 2 7 \"-\"") != NULL, "%s", line);
    cr_assert(strstr(line, "\"10.0.0.1:80\"\n") != NULL, "%s", line);
}
