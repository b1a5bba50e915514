/*
 * yaml_json.c: YAML text to a jansson tree (yaml_json.h), driven by
 * libyaml's event parser.
 *
 * Each node is built as JSON as soon as its events are read. Anchored nodes
 * are remembered (name -> finished JSON); an alias inserts a deep copy.
 * Merge keys (<<) are applied when their mapping ends, so explicit keys win
 * whatever their position. Alias expansion is budgeted to stop
 * "billion laughs" documents.
 */
#include "xdsnode/yaml_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Deepest nesting of sequences/mappings accepted. */
#define YAML_MAX_DEPTH 256
/* Most JSON values alias expansion may produce in one document. */
#define YAML_MAX_ALIAS_VALUES 1000000

struct anchor {
    char *name;
    json_t *value;
    size_t size; /* JSON values in `value`, counted once */
};

struct yaml_loader {
    yaml_parser_t parser;
    struct anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t alias_budget;
    int depth;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static json_t *load_fail(struct yaml_loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (ld->err != NULL && ld->errlen > 0)
        snprintf(ld->err, ld->errlen, "line %zu, column %zu: %s", mark.line + 1,
                 mark.column + 1, reason);
    return NULL;
}

static int next_event(struct yaml_loader *ld, yaml_event_t *ev)
{
    if (yaml_parser_parse(&ld->parser, ev))
        return 0;
    load_fail(ld, ld->parser.problem_mark, "%s%s%s",
              ld->parser.problem ? ld->parser.problem : "syntax error",
              ld->parser.context ? " " : "", ld->parser.context ? ld->parser.context : "");
    return -1;
}

/* ---- anchors ------------------------------------------------------------ */

static size_t json_value_count(const json_t *j)
{
    size_t n = 1, i;
    const char *key;
    json_t *v;

    if (json_is_array(j))
        for (i = 0; i < json_array_size(j); i++)
            n += json_value_count(json_array_get(j, i));
    else if (json_is_object(j))
        json_object_foreach((json_t *)j, key, v)
            n += json_value_count(v);
    return n;
}

static int anchor_register(struct yaml_loader *ld, const char *name, json_t *value)
{
    struct anchor *a;

    if (ld->n_anchors == ld->cap_anchors) {
        size_t cap = ld->cap_anchors ? ld->cap_anchors * 2 : 8;
        a = realloc(ld->anchors, cap * sizeof(*a));
        if (a == NULL)
            return -1;
        ld->anchors = a;
        ld->cap_anchors = cap;
    }
    a = &ld->anchors[ld->n_anchors];
    a->name = strdup(name);
    if (a->name == NULL)
        return -1;
    a->value = json_incref(value);
    a->size = json_value_count(value);
    ld->n_anchors++;
    return 0;
}

/* The latest definition wins: YAML allows an anchor to be redefined. */
static const struct anchor *anchor_find(const struct yaml_loader *ld, const char *name)
{
    size_t i = ld->n_anchors;

    while (i-- > 0)
        if (strcmp(ld->anchors[i].name, name) == 0)
            return &ld->anchors[i];
    return NULL;
}

static void anchors_free(struct yaml_loader *ld)
{
    size_t i;

    for (i = 0; i < ld->n_anchors; i++) {
        free(ld->anchors[i].name);
        json_decref(ld->anchors[i].value);
    }
    free(ld->anchors);
}

/* ---- scalars ------------------------------------------------------------ */

static int is_one_of(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, c) == 0;
}

/* YAML 1.2 core schema integer: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ */
static json_t *resolve_integer(const char *s)
{
    const char *digits = s + (*s == '-' || *s == '+');
    int base = 10;
    long long v;
    char *end;

    if (digits[0] == '0' && digits[1] == 'o' && digits == s) {
        base = 8;
        digits += 2;
    } else if (digits[0] == '0' && digits[1] == 'x' && digits == s) {
        base = 16;
        digits += 2;
    }
    if (*digits == '\0' || strspn(digits, base == 16 ? "0123456789abcdefABCDEF"
                                          : base == 8 ? "01234567" : "0123456789") !=
                               strlen(digits))
        return NULL;
    errno = 0;
    v = strtoll(digits, &end, base);
    if (errno == ERANGE)
        return base == 10 ? json_real(strtod(s, NULL)) : NULL;
    return json_integer(*s == '-' ? -v : v);
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? and the .inf/.nan forms;
 * infinities and NaN become the strings proto3 JSON uses for them. */
static json_t *resolve_float(const char *s)
{
    const char *p = s + (*s == '-' || *s == '+');
    size_t int_digits, frac_digits = 0;
    double x;

    if (is_one_of(p, ".inf", ".Inf", ".INF"))
        return json_string(*s == '-' ? "-Infinity" : "Infinity");
    if (p == s && is_one_of(s, ".nan", ".NaN", ".NAN"))
        return json_string("NaN");
    int_digits = strspn(p, "0123456789");
    p += int_digits;
    if (*p == '.') {
        frac_digits = strspn(p + 1, "0123456789");
        p += 1 + frac_digits;
    }
    if (int_digits + frac_digits == 0)
        return NULL;
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '-' || p[1] == '+');
        if (strspn(p, "0123456789") == 0)
            return NULL;
        p += strspn(p, "0123456789");
    }
    if (*p != '\0')
        return NULL;
    x = strtod(s, NULL);
    if (!isfinite(x))
        return json_string(x > 0 ? "Infinity" : "-Infinity");
    return json_real(x);
}

static json_t *resolve_plain(const char *s)
{
    json_t *j;

    if (*s == '\0' || strcmp(s, "~") == 0 || is_one_of(s, "null", "Null", "NULL"))
        return json_null();
    if (is_one_of(s, "true", "True", "TRUE"))
        return json_true();
    if (is_one_of(s, "false", "False", "FALSE"))
        return json_false();
    j = resolve_integer(s);
    if (j == NULL)
        j = resolve_float(s);
    return j ? j : json_string(s);
}

static int tagged_as_string(const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;

    return tag != NULL && (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0);
}

static json_t *load_scalar(struct yaml_loader *ld, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    json_t *j;

    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tagged_as_string(ev))
        j = resolve_plain(text);
    else
        j = json_stringn(text, ev->data.scalar.length);
    return j ? j : load_fail(ld, ev->start_mark, "invalid scalar");
}

/* ---- collections -------------------------------------------------------- */

static json_t *load_node(struct yaml_loader *ld, yaml_event_t *ev);

static json_t *load_sequence(struct yaml_loader *ld)
{
    json_t *arr = json_array();
    yaml_event_t ev;

    for (;;) {
        json_t *item;
        if (next_event(ld, &ev) != 0)
            break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        item = load_node(ld, &ev);
        if (item == NULL || json_array_append_new(arr, item) != 0)
            break;
    }
    json_decref(arr);
    return NULL;
}

static int merge_source_ok(const json_t *v)
{
    size_t i;

    if (json_is_object(v))
        return 1;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return 0;
    for (i = 0; i < json_array_size(v); i++)
        if (!json_is_object(json_array_get(v, i)))
            return 0;
    return 1;
}

/* Adds keys of `src` that `obj` lacks. */
static int merge_into(json_t *obj, const json_t *src)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)src, key, v) {
        if (json_object_get(obj, key) == NULL && json_object_set(obj, key, v) != 0)
            return -1;
    }
    return 0;
}

/* `merges` holds the << values in order; earlier ones take precedence. */
static int apply_merges(json_t *obj, const json_t *merges)
{
    size_t i, k;

    for (i = 0; i < json_array_size(merges); i++) {
        const json_t *m = json_array_get(merges, i);
        if (json_is_object(m)) {
            if (merge_into(obj, m) != 0)
                return -1;
            continue;
        }
        for (k = 0; k < json_array_size(m); k++)
            if (merge_into(obj, json_array_get(m, k)) != 0)
                return -1;
    }
    return 0;
}

/* Reads one key/value pair; `kev` is the key's event (consumed). Returns 1
 * at the end of the mapping, 0 after a pair, -1 on error. */
static int load_pair(struct yaml_loader *ld, yaml_event_t *kev, json_t *obj, json_t *merges)
{
    yaml_mark_t mark = kev->start_mark;
    yaml_event_t vev;
    json_t *value;
    char *key;
    int is_merge, rc = 0;

    if (kev->type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(kev);
        return 1;
    }
    if (kev->type != YAML_SCALAR_EVENT) {
        yaml_event_delete(kev);
        load_fail(ld, mark, "mapping keys must be scalars");
        return -1;
    }
    is_merge = kev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
               strcmp((const char *)kev->data.scalar.value, "<<") == 0;
    key = strdup((const char *)kev->data.scalar.value);
    yaml_event_delete(kev);
    if (key == NULL || next_event(ld, &vev) != 0) {
        free(key);
        return -1;
    }
    value = load_node(ld, &vev);
    if (value == NULL) {
        free(key);
        return -1;
    }
    if (is_merge && !merge_source_ok(value)) {
        load_fail(ld, mark, "merge value must be a mapping or a list of mappings");
        rc = -1;
    } else if (is_merge) {
        rc = json_array_append(merges, value);
    } else if (json_object_get(obj, key) != NULL) {
        load_fail(ld, mark, "duplicate key \"%s\"", key);
        rc = -1;
    } else if (json_object_set(obj, key, value) != 0) {
        load_fail(ld, mark, "invalid key");
        rc = -1;
    }
    json_decref(value);
    free(key);
    return rc;
}

static json_t *load_mapping(struct yaml_loader *ld)
{
    json_t *obj = json_object(), *merges = json_array();
    yaml_event_t kev;
    int rc = 0;

    while (rc == 0) {
        if (next_event(ld, &kev) != 0) {
            rc = -1;
            break;
        }
        rc = load_pair(ld, &kev, obj, merges);
    }
    if (rc == 1 && apply_merges(obj, merges) == 0) {
        json_decref(merges);
        return obj;
    }
    json_decref(merges);
    json_decref(obj);
    return NULL;
}

static json_t *load_alias(struct yaml_loader *ld, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const struct anchor *a = anchor_find(ld, name);

    if (a == NULL)
        return load_fail(ld, ev->start_mark, "unknown anchor \"%s\"", name);
    if (a->size > ld->alias_budget)
        return load_fail(ld, ev->start_mark, "too many values from aliases");
    ld->alias_budget -= a->size;
    return json_deep_copy(a->value);
}

/* Builds the node that starts with `ev` (consumed), reading its events. */
static json_t *load_node(struct yaml_loader *ld, yaml_event_t *ev)
{
    yaml_mark_t mark = ev->start_mark;
    char *anchor = NULL;
    json_t *j = NULL;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = (char *)ev->data.scalar.anchor;
        j = load_scalar(ld, ev);
        break;
    case YAML_ALIAS_EVENT:
        j = load_alias(ld, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        anchor = (char *)(ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                                : ev->data.mapping_start.anchor);
        if (++ld->depth > YAML_MAX_DEPTH)
            load_fail(ld, mark, "nesting too deep");
        else
            j = ev->type == YAML_SEQUENCE_START_EVENT ? load_sequence(ld) : load_mapping(ld);
        ld->depth--;
        break;
    default:
        load_fail(ld, mark, "unexpected YAML event");
        break;
    }
    if (j != NULL && anchor != NULL && anchor_register(ld, anchor, j) != 0) {
        json_decref(j);
        j = load_fail(ld, mark, "out of memory");
    }
    yaml_event_delete(ev);
    return j;
}

/* ---- documents ---------------------------------------------------------- */

static int is_empty_document(const yaml_event_t *ev)
{
    return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
           ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.tag == NULL &&
           ev->data.scalar.anchor == NULL;
}

/* After STREAM_START: nothing, or one document. */
static json_t *load_stream(struct yaml_loader *ld)
{
    yaml_event_t ev;
    json_t *root;

    if (next_event(ld, &ev) != 0)
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return json_object();
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(ld, &ev) != 0)
        return NULL;
    if (is_empty_document(&ev)) {
        yaml_event_delete(&ev);
        root = json_object();
    } else {
        root = load_node(ld, &ev);
    }
    if (root == NULL)
        return NULL;
    if (next_event(ld, &ev) != 0) /* DOCUMENT_END */
        goto fail;
    yaml_event_delete(&ev);
    if (next_event(ld, &ev) != 0)
        goto fail;
    if (ev.type != YAML_STREAM_END_EVENT) {
        load_fail(ld, ev.start_mark, "expected a single document");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    return root;
fail:
    json_decref(root);
    return NULL;
}

json_t *yaml_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct yaml_loader ld;
    yaml_event_t ev;
    json_t *root = NULL;

    memset(&ld, 0, sizeof(ld));
    ld.err = err;
    ld.errlen = errlen;
    ld.alias_budget = YAML_MAX_ALIAS_VALUES;
    if (!yaml_parser_initialize(&ld.parser)) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "line 1, column 1: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)(text ? text : ""),
                                 text ? len : 0);
    if (next_event(&ld, &ev) == 0) {
        yaml_event_delete(&ev); /* STREAM_START */
        root = load_stream(&ld);
    }
    anchors_free(&ld);
    yaml_parser_delete(&ld.parser);
    return root;
}
