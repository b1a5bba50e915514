/*
 * access_log.h: Envoy's default access log format, one line per request:
 *   [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
 *   %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
 *   %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
 *   "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
 * Missing values print "-", as Envoy does.
 *
 * Owns: nothing. Threads: any (pure formatting).
 */
#ifndef XDSNODE_ACCESS_LOG_H
#define XDSNODE_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct {
    struct timespec start;        /* CLOCK_REALTIME */
    const char *method, *path, *protocol; /* protocol "HTTP/1.1"; NULL for TCP */
    int response_code;            /* 0 for none */
    const char *response_flags;   /* "" for none */
    uint64_t bytes_received, bytes_sent;
    long duration_ms;
    long upstream_service_time_ms; /* < 0: none */
    const char *x_forwarded_for, *user_agent, *request_id, *authority, *upstream_host;
} access_log_entry;

/* Writes one line (with '\n') into out; returns its length (truncated to
 * outlen - 1). */
size_t access_log_format(const access_log_entry *e, char *out, size_t outlen);

#endif
