/*
 * log.h: leveled logging to stderr, with Envoy's level names.
 *
 * Owns: the process-wide log level (a singleton set once at start-up from
 * --log-level, read atomically afterwards).
 * Threads: any thread may log; log_set_level() is meant for main() but is
 * safe from any thread.
 * Format: "[2026-11-30 08:00:00.123][info] message\n", one write per line.
 */
#ifndef XDSNODE_LOG_H
#define XDSNODE_LOG_H

typedef enum {
    LOG_TRACE = 0,
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
    LOG_CRITICAL,
    LOG_OFF,
} log_level;

/* Parses an Envoy level name (trace, debug, info, warning, warn, error,
 * critical, off). Returns 0 and sets *out, or -1 for an unknown name. */
int log_level_parse(const char *name, log_level *out);
const char *log_level_name(log_level level);

void log_set_level(log_level level);
log_level log_get_level(void);
int log_enabled(log_level level);

void log_write(log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...) \
    do { if (log_enabled(lvl)) log_write(lvl, __VA_ARGS__); } while (0)
#define log_trace(...) LOG_AT(LOG_TRACE, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)
#define log_critical(...) LOG_AT(LOG_CRITICAL, __VA_ARGS__)

#endif
