/* Unit tests: header lists fed in pieces, hop-by-hop rules, Keep-Alive
 * parsing, Envoy's local reply bytes, the access log line. */
#include <criterion/criterion.h>
#include <stdio.h>
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

Test(headers, te_trailers_token)
{
    cr_assert(header_te_trailers("trailers", 8));
    cr_assert(header_te_trailers("gzip, Trailers", 14));
    cr_assert_not(header_te_trailers("gzip", 4));
    cr_assert_not(header_te_trailers("trailersx", 9));
    cr_assert_not(header_te_trailers("", 0));
}

Test(headers, header_write_long_field_still_whole)
{
    char value[2000];
    memset(value, 'v', sizeof(value));
    buffer b;
    buffer_init(&b);
    cr_assert_eq(header_write(&b, "X-Long", 6, value, sizeof(value)), 0);
    cr_assert_eq(buffer_len(&b), 6 + 2 + sizeof(value) + 2);
    cr_assert_eq(memcmp(buffer_start(&b), "x-long: vvv", 11), 0);
    cr_assert_eq(memcmp(buffer_start(&b) + buffer_len(&b) - 3, "v\r\n", 3), 0);
    buffer_free(&b);
}

Test(headers, many_fields_grow_past_the_first_block)
{
    header_list l;
    header_list_init(&l);
    char name[16];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof(name), "x-h%d", i);
        cr_assert_eq(header_list_add_name(&l, name, (size_t)n), 0);
        cr_assert_eq(header_list_add_value(&l, name + 2, (size_t)n - 2), 0);
    }
    cr_assert_eq(l.n, 100);
    size_t n;
    cr_assert_str_eq(header_list_get(&l, "x-h0", &n), "h0");
    cr_assert_str_eq(header_list_get(&l, "X-H99", &n), "h99");
    header_list_free(&l);
}

Test(buffer, number_helpers_and_growth)
{
    buffer b;
    buffer_init(&b);
    cr_assert_eq(buffer_append_u64(&b, 0), 0);
    buffer_append(&b, " ", 1);
    buffer_append_u64(&b, 18446744073709551615ull);
    buffer_append(&b, " ", 1);
    buffer_append_hex(&b, 0x1f2e);
    buffer_append(&b, " ", 1);
    buffer_append_str(&b, "end");
    cr_assert_eq(buffer_len(&b), strlen("0 18446744073709551615 1f2e end"));
    cr_assert_eq(memcmp(buffer_start(&b), "0 18446744073709551615 1f2e end", buffer_len(&b)), 0);
    char digits[24];
    cr_assert_eq(format_u64(digits, 0), 1);
    cr_assert_eq(digits[0], '0');
    cr_assert_eq(format_u64(digits, 18446744073709551615ull), 20);
    cr_assert_eq(memcmp(digits, "18446744073709551615", 20), 0);
    /* past the first (cached) block: the bytes stay in order */
    for (int i = 0; i < 1000; i++)
        buffer_append(&b, "0123456789", 10);
    cr_assert_eq(buffer_len(&b), 31 + 10000);
    cr_assert_eq(memcmp(buffer_start(&b) + 31 + 9990, "0123456789", 10), 0);
    buffer_free(&b);
    /* blocks come back from the cache intact for reuse */
    for (int k = 0; k < 3; k++) {
        buffer c;
        buffer_init(&c);
        buffer_append(&c, "abc", 3);
        cr_assert_eq(c.cap, BUFFER_BLOCK_SIZE);
        buffer_consume(&c, 1);
        cr_assert_eq(memcmp(buffer_start(&c), "bc", 2), 0);
        buffer_free(&c);
    }
}

Test(headers, lower_ascii_letters_only)
{
    char s[] = "X-Forwarded-FOR:AZaz@[`{\x80\xc3\x89 Content-Type";
    header_lower(s, sizeof(s) - 1);
    cr_assert_str_eq(s, "x-forwarded-for:azaz@[`{\x80\xc3\x89 content-type");
    for (size_t len = 0; len <= 20; len++) { /* every tail length */
        char t[24], want[24];
        for (size_t i = 0; i < len; i++) {
            t[i] = (char)('A' + (i * 7) % 26);
            want[i] = (char)('a' + (i * 7) % 26);
        }
        t[len] = want[len] = '\0';
        header_lower(t, len);
        cr_assert_str_eq(t, want, "length %zu", len);
    }
}

Test(headers, whole_fields_mix_with_pieces)
{
    header_list l;
    header_list_init(&l);
    cr_assert_eq(header_list_add(&l, "a", 1, "1", 1), 0);
    header_list_add_name(&l, "B", 1); /* a piece after a whole field starts a new one */
    header_list_add_value(&l, "2", 1);
    cr_assert_eq(header_list_add(&l, "c", 1, "", 0), 0);
    char big[3000];
    memset(big, 'v', sizeof(big));
    for (int i = 0; i < 100; i++) /* grows the entries and the text */
        cr_assert_eq(header_list_add(&l, "x-many", 6, big, sizeof(big)), 0);
    cr_assert_eq(l.n, 103);
    size_t n;
    cr_assert_str_eq(header_list_get(&l, "a", &n), "1");
    cr_assert_str_eq(header_list_get(&l, "b", &n), "2");
    cr_assert_str_eq(header_list_get(&l, "c", &n), "");
    cr_assert_eq(n, 0);
    cr_assert_eq(l.h[102].value_len, sizeof(big));
    cr_assert_str_eq(header_name(&l, 102), "x-many");
    cr_assert_eq(header_value(&l, 102)[sizeof(big)], '\0');
    cr_assert_eq(l.bytes, 1 + 1 + 1 + 1 + 1 + 100 * (6 + sizeof(big)));
    header_list_free(&l);
}

Test(headers, mixed_case_follows_the_names)
{
    header_list h1, h2, out;
    header_list_init(&h1);
    header_list_init(&h2);
    header_list_init(&out);
    header_list_add(&h2, "x-a", 3, "1", 1); /* HTTP/2 fields: lower case */
    cr_assert_not(h2.mixed_case);
    header_list_add_field(&out, &h2, 0);
    cr_assert_not(out.mixed_case);
    header_list_add_name(&h1, "X-B", 3); /* HTTP/1.1 pieces: any case */
    header_list_add_value(&h1, "2", 1);
    cr_assert(h1.mixed_case);
    header_list_add_field(&out, &h1, 0);
    cr_assert(out.mixed_case);
    cr_assert_str_eq(header_name(&out, 1), "X-B");
    header_list_reset(&out);
    cr_assert_not(out.mixed_case);
    header_list_free(&h1);
    header_list_free(&h2);
    header_list_free(&out);
}
