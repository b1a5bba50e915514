/* cp_pending.c: Delta responses not yet ACKed or NACKed, and what the
 * client held before each (see cp_stream.h). */
#include <stdio.h>
#include <string.h>

#include "cp_stream.h"

int cp_pending_note(json_t *prior, const char *name, const char *version)
{
    if (json_object_get(prior, name) != NULL)
        return 0;
    return json_object_set_new(prior, name, version ? json_string(version) : json_null());
}

int cp_pending_find(const cp_type_state *st, const char *nonce)
{
    if (nonce == NULL || nonce[0] == '\0')
        return -1;
    for (size_t i = 0; i < st->n_pending; i++)
        if (strcmp(st->pending[i].nonce, nonce) == 0)
            return (int)i;
    return -1;
}

void cp_pending_take(cp_type_state *st, int index, cp_pending *out)
{
    size_t k = (size_t)index;

    for (size_t i = 0; i < k; i++)
        json_decref(st->pending[i].prior);
    *out = st->pending[k];
    memmove(&st->pending[0], &st->pending[k + 1],
            (st->n_pending - k - 1) * sizeof(st->pending[0]));
    st->n_pending -= k + 1;
}

/* The first unanswered response that changed `name`, or NULL. */
static cp_pending *later_change(cp_type_state *st, const char *name)
{
    for (size_t i = 0; i < st->n_pending; i++)
        if (json_object_get(st->pending[i].prior, name) != NULL)
            return &st->pending[i];
    return NULL;
}

void cp_pending_reject(cp_type_state *st, cp_pending *p)
{
    const char *name;
    json_t *held;

    json_object_foreach(p->prior, name, held) {
        cp_pending *later = later_change(st, name);
        if (later != NULL)
            json_object_set(later->prior, name, held);
        else if (json_object_get(st->undo, name) == NULL)
            json_object_set(st->undo, name, held);
    }
    json_decref(p->prior);
    p->prior = NULL;
}

void cp_pending_undo(cp_type_state *st)
{
    const char *name;
    json_t *held;

    json_object_foreach(st->undo, name, held) {
        if (json_is_string(held))
            json_object_set(st->known, name, held);
        else
            json_object_del(st->known, name);
    }
    json_object_clear(st->undo);
}

int cp_pending_add(cp_type_state *st, const char *nonce, json_t *prior)
{
    if (prior == NULL)
        return -1;
    if (st->n_pending == CP_PENDING_MAX) {
        cp_pending oldest;
        cp_pending_take(st, 0, &oldest);
        cp_pending_reject(st, &oldest);
    }
    cp_pending *p = &st->pending[st->n_pending++];
    snprintf(p->nonce, sizeof(p->nonce), "%s", nonce);
    p->prior = prior;
    return 0;
}

void cp_pending_clear(cp_type_state *st)
{
    for (size_t i = 0; i < st->n_pending; i++)
        json_decref(st->pending[i].prior);
    st->n_pending = 0;
}
