/* cluster_stats.c: definition tables for cluster stats (cluster_stats.h). */
#include "xdsnode/cluster_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAT_DEF(id, name, type) [CLUSTER_STAT_##id] = {name, type},
const stat_def cluster_stat_defs[CLUSTER_STAT_COUNT] = {CLUSTER_STATS(STAT_DEF)};
#undef STAT_DEF

#define STAT_DEF(id, name, type) [CM_STAT_##id] = {name, type},
const stat_def cm_stat_defs[CM_STAT_COUNT] = {CM_STATS(STAT_DEF)};
#undef STAT_DEF

stats_scope *cluster_stats_scope_create(const char *stat_name)
{
    char *clean = stats_sanitize_name(stat_name);
    if (clean == NULL)
        return NULL;
    size_t len = strlen("cluster.") + strlen(clean) + 2;
    char *prefix = malloc(len);
    stats_scope *s = NULL;
    if (prefix != NULL) {
        snprintf(prefix, len, "cluster.%s.", clean);
        s = stats_scope_create(prefix, cluster_stat_defs, CLUSTER_STAT_COUNT, "cluster.",
                               "envoy_cluster_name", clean);
    }
    free(prefix);
    free(clean);
    return s;
}
