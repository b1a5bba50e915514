/* cluster_stats.c: definition tables for cluster stats (cluster_stats.h). */
#include "xdsnode/cluster_stats.h"

#define STAT_DEF(id, name, type) [CLUSTER_STAT_##id] = {name, type},
const stat_def cluster_stat_defs[CLUSTER_STAT_COUNT] = {CLUSTER_STATS(STAT_DEF)};
#undef STAT_DEF

#define STAT_DEF(id, name, type) [CM_STAT_##id] = {name, type},
const stat_def cm_stat_defs[CM_STAT_COUNT] = {CM_STATS(STAT_DEF)};
#undef STAT_DEF

stats_scope *cluster_stats_scope_create(const char *stat_name)
{
    return stats_scope_create_named("cluster.", stat_name, cluster_stat_defs, CLUSTER_STAT_COUNT,
                                    "envoy_cluster_name");
}
