/* upstream_socket.c: upstream socket options (upstream_socket.h). */
#include "xdsnode/upstream_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int set_int(int fd, int level, int name, int value, const char *what, char *err, size_t errlen)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) == 0)
        return 0;
    snprintf(err, errlen, "setsockopt %s=%d: %s", what, value, strerror(errno));
    return -1;
}

int upstream_socket_apply(int fd, const cluster_config *cfg, char *err, size_t errlen)
{
    if (set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY", err, errlen) != 0)
        return -1;
    if (!cfg->tcp_keepalive)
        return 0;
    if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE", err, errlen) != 0)
        return -1;
    if (cfg->keepalive_probes &&
        set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)cfg->keepalive_probes, "TCP_KEEPCNT", err, errlen) != 0)
        return -1;
    if (cfg->keepalive_time &&
        set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)cfg->keepalive_time, "TCP_KEEPIDLE", err, errlen) != 0)
        return -1;
    if (cfg->keepalive_interval &&
        set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)cfg->keepalive_interval, "TCP_KEEPINTVL", err, errlen) != 0)
        return -1;
    return 0;
}
