/* Unit tests: upstream socket options read back with getsockopt. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xdsnode/upstream_socket.h"

static int get_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    cr_assert_eq(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    return fd;
}

Test(upstream_socket, keepalive_values_are_set)
{
    cluster_config cfg = {.tcp_keepalive = 1, .keepalive_time = 30, .keepalive_interval = 5, .keepalive_probes = 3};
    int fd = tcp_socket();
    char err[160];
    cr_assert_eq(upstream_socket_apply(fd, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    cr_assert_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
    cr_assert_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 5);
    cr_assert_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
    cr_assert_neq(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    close(fd);
}

Test(upstream_socket, unset_fields_keep_the_os_defaults)
{
    int probe = tcp_socket();
    int os_idle = get_int(probe, IPPROTO_TCP, TCP_KEEPIDLE), os_intvl = get_int(probe, IPPROTO_TCP, TCP_KEEPINTVL),
        os_cnt = get_int(probe, IPPROTO_TCP, TCP_KEEPCNT);
    close(probe);
    cluster_config cfg = {.tcp_keepalive = 1, .keepalive_interval = 7};
    int fd = tcp_socket();
    char err[160];
    cr_assert_eq(upstream_socket_apply(fd, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    cr_assert_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 7);
    cr_assert_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), os_idle);
    cr_assert_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), os_cnt);
    (void)os_intvl;
    close(fd);
}

Test(upstream_socket, no_tcp_keepalive_leaves_it_off)
{
    cluster_config cfg = {0};
    int fd = tcp_socket();
    char err[160];
    cr_assert_eq(upstream_socket_apply(fd, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    close(fd);
}

Test(upstream_socket, refused_value_is_an_error)
{
    cluster_config cfg = {.tcp_keepalive = 1, .keepalive_probes = 100000};
    int fd = tcp_socket();
    char err[160] = "";
    cr_assert_eq(upstream_socket_apply(fd, &cfg, err, sizeof(err)), -1);
    cr_assert(strstr(err, "TCP_KEEPCNT") != NULL, "%s", err);
    close(fd);
}
