/* Unit tests: stats scopes and the /stats, JSON and Prometheus renderings. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "xdsnode/stats.h"

static const stat_def cluster_defs[] = {
    {"upstream_cx_total", STAT_COUNTER},
    {"upstream_cx_active", STAT_GAUGE},
    {"upstream_rq_total", STAT_COUNTER},
};

static const stat_def cm_defs[] = {
    {"active_clusters", STAT_GAUGE},
};

static stats_store *make_store(void)
{
    stats_store *st = stats_store_create();
    stats_scope *a = stats_scope_create("cluster.b_one.", cluster_defs, 3, "cluster.",
                                        "envoy_cluster_name", "b_one");
    stats_scope *b = stats_scope_create("cluster.a_two.", cluster_defs, 3, "cluster.",
                                        "envoy_cluster_name", "a_two");
    stats_scope *cm = stats_scope_create("cluster_manager.", cm_defs, 1, NULL, NULL, NULL);
    cr_assert(st && a && b && cm);
    stats_store_add(st, a);
    stats_store_add(st, b);
    stats_store_add(st, cm);
    stats_add(a, 0, 5);
    stats_set(a, 1, 2);
    stats_inc(b, 2);
    stats_set(cm, 0, 2);
    stats_scope_unref(a);
    stats_scope_unref(b);
    stats_scope_unref(cm);
    return st;
}

static char *render(stats_store *st, const char *query, int prometheus, int *status)
{
    admin_response r = {0};
    int rc = prometheus ? stats_render_prometheus(st, query, &r) : stats_render(st, query, &r);
    cr_assert_eq(rc, 0);
    *status = r.status;
    return r.body;
}

Test(stats, text_sorted)
{
    stats_store *st = make_store();
    int status;
    char *t = render(st, "", 0, &status);
    cr_assert_eq(status, 200);
    cr_assert_str_eq(t, "cluster.a_two.upstream_cx_active: 0\n"
                        "cluster.a_two.upstream_cx_total: 0\n"
                        "cluster.a_two.upstream_rq_total: 1\n"
                        "cluster.b_one.upstream_cx_active: 2\n"
                        "cluster.b_one.upstream_cx_total: 5\n"
                        "cluster.b_one.upstream_rq_total: 0\n"
                        "cluster_manager.active_clusters: 2\n");
    free(t);
    stats_store_destroy(st);
}

Test(stats, filter_usedonly_json)
{
    stats_store *st = make_store();
    int status;
    char *t = render(st, "filter=cx_&usedonly", 0, &status);
    cr_assert_str_eq(t, "cluster.b_one.upstream_cx_active: 2\ncluster.b_one.upstream_cx_total: 5\n");
    free(t);
    t = render(st, "format=json&filter=^cluster_manager", 0, &status);
    cr_assert_str_eq(t, "{\"stats\":[{\"name\":\"cluster_manager.active_clusters\",\"value\":2}]}");
    free(t);
    stats_store_destroy(st);
}

Test(stats, prometheus_labels)
{
    stats_store *st = make_store();
    int status;
    char *t = render(st, "filter=cx_total|active_clusters", 1, &status);
    cr_assert_str_eq(t, "# TYPE envoy_cluster_manager_active_clusters gauge\n"
                        "envoy_cluster_manager_active_clusters{} 2\n"
                        "# TYPE envoy_cluster_upstream_cx_total counter\n"
                        "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"a_two\"} 0\n"
                        "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"b_one\"} 5\n");
    free(t);
    stats_store_destroy(st);
}

Test(stats, remove_scope_and_sanitize)
{
    stats_store *st = stats_store_create();
    char *n = stats_sanitize_name("outbound|80||a.b:c");
    cr_assert_str_eq(n, "outbound|80||a.b_c");
    stats_scope *s = stats_scope_create("cluster.x.", cluster_defs, 3, "cluster.", "envoy_cluster_name", n);
    free(n);
    stats_store_add(st, s);
    stats_store_remove(st, s);
    stats_inc(s, 0); /* still valid: the caller holds a reference */
    stats_scope_unref(s);
    int status;
    char *t = render(st, "", 0, &status);
    cr_assert_str_eq(t, "");
    free(t);
    stats_store_destroy(st);
}

Test(stats, bad_filter_is_400)
{
    stats_store *st = make_store();
    admin_response r = {0};
    cr_assert_eq(stats_render(st, "filter=(", &r), 0);
    cr_assert_eq(r.status, 400);
    free(r.body);
    stats_store_destroy(st);
}
