/* config_file.c: read and decode YAML/JSON configuration files (config_file.h). */
#include "xdsnode/config_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xdsnode/pbjson.h"
#include "xdsnode/yaml_json.h"

int config_file_read(const char *path, size_t max, char **text, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((unsigned long long)st.st_size > max) {
        snprintf(err, errlen, "%s: file larger than %zu bytes", path, max);
        fclose(f);
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = buf == NULL || ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

int config_path_is_json(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && strcmp(path + n - 5, ".json") == 0;
}

static json_t *parse_text(const char *text, size_t len, int is_json, const char *source,
                          char *err, size_t errlen)
{
    if (is_json) {
        json_error_t jerr;
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL)
            snprintf(err, errlen, "%s: line %d, column %d: %s", source, jerr.line, jerr.column,
                     jerr.text);
        return root;
    }
    char why[1024];
    json_t *root = yaml_json_parse(text, len, why, sizeof(why));
    if (root == NULL)
        snprintf(err, errlen, "%s: %s", source, why);
    return root;
}

int config_text_decode(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                       int is_json, const char *source, ProtobufCMessage **out, char *err,
                       size_t errlen)
{
    json_t *root = parse_text(text, len, is_json, source, err, errlen);
    if (root == NULL)
        return -1;
    char why[1024];
    int rc = pbjson_decode(desc, root, "", out, why, sizeof(why));
    json_decref(root);
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", source, why);
    return rc;
}
