/*
 * cp_log.h: the mock control plane's conversation log, one JSON object per
 * line ({"event": ..., ...}), flushed after each line so tests and users
 * can follow it with jq while the control plane runs.
 *
 * Owns: the log stream (stdout by default, or a file opened for append).
 * Threads: the control plane's one thread.
 */
#ifndef XDSNODE_CP_LOG_H
#define XDSNODE_CP_LOG_H

#include <jansson.h>

/* Opens `path` for append, or uses stdout when path is NULL or "-". */
int cp_log_open(const char *path, char *err, size_t errlen);
void cp_log_close(void);

/* A new event object with "event" set (and "time", RFC 3339 UTC with ms). */
json_t *cp_log_event_new(const char *event);

/* Writes the event as one line, flushes, and releases it. */
void cp_log_emit(json_t *event);

/* A JSON array of C strings. */
json_t *cp_log_strings(char *const *strings, size_t n);

#endif
