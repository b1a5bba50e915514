/* http_stats.c: definition tables for the HCM's stats (http_stats.h). */
#include "xdsnode/http_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAT_DEF(id, name, type) [HTTP_STAT_##id] = {name, type},
static const stat_def http_stat_defs[HTTP_STAT_COUNT] = {HTTP_STATS(STAT_DEF)};
#undef STAT_DEF

#define STAT_DEF(id, name, type) [HTTP2_STAT_##id] = {name, type},
static const stat_def http2_stat_defs[HTTP2_STAT_COUNT] = {HTTP2_CODEC_STATS(STAT_DEF)};
#undef STAT_DEF

stats_scope *http_stats_scope_create(const char *stat_prefix)
{
    char *clean = stats_sanitize_name(stat_prefix);
    if (clean == NULL)
        return NULL;
    size_t len = strlen("http.") + strlen(clean) + 2;
    char *prefix = malloc(len);
    stats_scope *s = NULL;
    if (prefix != NULL) {
        snprintf(prefix, len, "http.%s.", clean);
        s = stats_scope_create(prefix, http_stat_defs, HTTP_STAT_COUNT, "http.",
                               "envoy_http_conn_manager_prefix", clean);
    }
    free(prefix);
    free(clean);
    return s;
}

stats_scope *http2_codec_stats_scope_create(void)
{
    return stats_scope_create("http2.", http2_stat_defs, HTTP2_STAT_COUNT, NULL, NULL, NULL);
}
