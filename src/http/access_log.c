/* access_log.c: Envoy's default access log line (access_log.h). */
#include "xdsnode/access_log.h"

#include <stdio.h>

static const char *or_dash(const char *s) { return s && *s ? s : "-"; }

size_t access_log_format(const access_log_entry *e, char *out, size_t outlen)
{
    struct tm tm;
    gmtime_r(&e->start.tv_sec, &tm);
    char start[40], rc[16], ust[24];
    size_t n = strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(start + n, sizeof(start) - n, ".%03ldZ", e->start.tv_nsec / 1000000);
    snprintf(rc, sizeof(rc), "%d", e->response_code);
    if (e->upstream_service_time_ms >= 0)
        snprintf(ust, sizeof(ust), "%ld", e->upstream_service_time_ms);
    else
        snprintf(ust, sizeof(ust), "-");
    int w = snprintf(out, outlen,
                     "[%s] \"%s %s %s\" %s %s %llu %llu %ld %s \"%s\" \"%s\" \"%s\" \"%s\" \"%s\"\n",
                     start, or_dash(e->method), or_dash(e->path), or_dash(e->protocol),
                     e->response_code ? rc : "0", or_dash(e->response_flags),
                     (unsigned long long)e->bytes_received, (unsigned long long)e->bytes_sent,
                     e->duration_ms, ust, or_dash(e->x_forwarded_for), or_dash(e->user_agent),
                     or_dash(e->request_id), or_dash(e->authority), or_dash(e->upstream_host));
    if (w < 0)
        return 0;
    return (size_t)w < outlen ? (size_t)w : outlen - 1;
}
