/* Unit tests: snapshots built from the cluster manager: only active
 * clusters, sorted lookup, an unchanged cluster keeps its dp_cluster
 * (and so its circuit breaker counters and pools), the change listener
 * fires for every change. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "xdsnode/bootstrap.h"
#include "xdsnode/cluster_manager.h"
#include "xdsnode/snapshot.h"

static int changes;
static void on_change(void *ctx, const cluster_manager *cm)
{
    (void)ctx;
    (void)cm;
    changes++;
}

static void add(cluster_manager *cm, const char *yaml)
{
    pb_bootstrap *b = NULL;
    char err[512];
    cr_assert_eq(bootstrap_parse_text(yaml, strlen(yaml), 0, "t", &b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cluster_manager_add_static(cm, b->static_resources->clusters[0], err, sizeof(err)), 0, "%s", err);
    bootstrap_free(b);
}

Test(snapshot, build_reuse_and_lookup)
{
    stats_store *st = stats_store_create();
    cluster_manager *cm = cluster_manager_create(st);
    cluster_manager_set_change_listener(cm, on_change, NULL);
    add(cm, "static_resources: {clusters: [{name: b, load_assignment: {endpoints: [{lb_endpoints: ["
            "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]}}]}");
    cr_assert_eq(changes, 1);
    dp_snapshot *s1 = snapshot_build(cm, NULL);
    cr_assert_eq(s1->n, 1);
    dp_cluster *b1 = snapshot_find(s1, "b");
    cr_assert_not_null(b1);
    cr_assert_eq(b1->cfg->n_hosts, 1);
    cr_assert(cb_try_acquire(&b1->cb, PRIORITY_DEFAULT, CB_REQUESTS));

    add(cm, "static_resources: {clusters: [{name: a}]}");
    cr_assert_eq(changes, 2);
    dp_snapshot *s2 = snapshot_build(cm, s1);
    cr_assert_eq(s2->n, 2);
    cr_assert_str_eq(s2->clusters[0]->cfg->name, "a", "sorted by name");
    cr_assert_eq(snapshot_find(s2, "b"), b1, "unchanged generation: same dp_cluster");
    cr_assert_eq(cb_count(&snapshot_find(s2, "b")->cb, PRIORITY_DEFAULT, CB_REQUESTS), 1,
                 "breaker counters carry over");
    cr_assert_null(snapshot_find(s2, "c"));
    cr_assert_null(snapshot_find_n(s2, "bb", 2));
    cr_assert_eq(snapshot_find_n(s2, "bx", 1), b1);

    snapshot_unref(s1); /* b1 stays alive: s2 holds it */
    cr_assert_str_eq(b1->cfg->name, "b");
    snapshot_unref(s2);
    cluster_manager_destroy(cm);
    stats_store_destroy(st);
}
