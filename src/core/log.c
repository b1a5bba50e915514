/* log.c: leveled logging to stderr (see log.h). */
#include "xdsnode/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_log_level = LOG_INFO;

static const struct {
    const char *name;
    log_level level;
} level_names[] = {
    {"trace", LOG_TRACE}, {"debug", LOG_DEBUG},   {"info", LOG_INFO},
    {"warning", LOG_WARN}, {"warn", LOG_WARN},    {"error", LOG_ERROR},
    {"critical", LOG_CRITICAL}, {"off", LOG_OFF},
};

int log_level_parse(const char *name, log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i].name) == 0) {
            *out = level_names[i].level;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(log_level level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (level_names[i].level == level)
            return level_names[i].name;
    }
    return "unknown";
}

void log_set_level(log_level level) { atomic_store(&g_log_level, (int)level); }

log_level log_get_level(void) { return (log_level)atomic_load(&g_log_level); }

int log_enabled(log_level level)
{
    return level != LOG_OFF && (int)level >= atomic_load(&g_log_level);
}

void log_write(log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "[%04d-%02d-%02d %02d:%02d:%02d.%03d][%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), log_level_name(level));
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
