/* cp_log.c: JSON-lines conversation log (see cp_log.h). */
#include "cp_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static FILE *log_out;

int cp_log_open(const char *path, char *err, size_t errlen)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        log_out = stdout;
        return 0;
    }
    log_out = fopen(path, "a");
    if (log_out == NULL) {
        snprintf(err, errlen, "%s: cannot open log: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void cp_log_close(void)
{
    if (log_out != NULL && log_out != stdout)
        fclose(log_out);
    log_out = NULL;
}

json_t *cp_log_event_new(const char *event)
{
    struct timespec ts;
    struct tm tm;
    char when[40];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return json_pack("{s:s, s:s}", "event", event, "time", when);
}

void cp_log_emit(json_t *event)
{
    FILE *out = log_out ? log_out : stdout;

    if (event == NULL)
        return;
    json_dumpf(event, out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    fputc('\n', out);
    fflush(out);
    json_decref(event);
}

json_t *cp_log_strings(char *const *strings, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(strings[i]));
    return arr;
}
