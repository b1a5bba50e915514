/*
 * dlist.h: intrusive doubly-linked lists, for any struct with `prev` and
 * `next` pointers to its own type, headed by a plain pointer (NULL when
 * empty). Nodes go in at the head and come out in O(1); a removed node's
 * links are cleared. The macros evaluate their arguments more than once:
 * pass plain lvalues.
 *
 * Owns: nothing (the nodes are the caller's). Threads: the caller's; a
 * list is not synchronized.
 */
#ifndef XDSNODE_DLIST_H
#define XDSNODE_DLIST_H

#include <stddef.h>

#define DLIST_INSERT_HEAD(head, node)                                                     \
    do {                                                                                  \
        (node)->prev = NULL;                                                              \
        (node)->next = (head);                                                            \
        if ((head) != NULL)                                                               \
            (head)->prev = (node);                                                        \
        (head) = (node);                                                                  \
    } while (0)

#define DLIST_REMOVE(head, node)                                                          \
    do {                                                                                  \
        if ((node)->prev != NULL)                                                         \
            (node)->prev->next = (node)->next;                                            \
        else                                                                              \
            (head) = (node)->next;                                                        \
        if ((node)->next != NULL)                                                         \
            (node)->next->prev = (node)->prev;                                            \
        (node)->prev = (node)->next = NULL;                                               \
    } while (0)

#endif
