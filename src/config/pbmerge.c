/* pbmerge.c: protobuf MergeFrom for protobuf-c messages (see pbmerge.h). */
#include "xdsnode/pbmerge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER(msg, off) ((void *)((uint8_t *)(msg) + (off)))
#define CMEMBER(msg, off) ((const void *)((const uint8_t *)(msg) + (off)))

ProtobufCMessage *pb_clone(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return NULL;
    protobuf_c_message_pack(msg, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    free(buf);
    return copy;
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 8;
    }
}

static int is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i])
            return 0;
    }
    return 1;
}

/* Frees whatever a singular field holds (string, bytes, message). */
static void free_value(const ProtobufCFieldDescriptor *f, void *slot)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char *s = *(char **)slot;
        if (s && s != protobuf_c_empty_string && s != f->default_value)
            free(s);
        *(char **)slot = (char *)protobuf_c_empty_string;
    } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData *b = slot;
        const ProtobufCBinaryData *def = f->default_value;
        if (b->data && (def == NULL || b->data != def->data))
            free(b->data);
        b->data = NULL;
        b->len = 0;
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage *m = *(ProtobufCMessage **)slot;
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        *(ProtobufCMessage **)slot = NULL;
    }
}

/* Copies one value (of any type) from src slot to dst slot, deep. */
static int copy_value(const ProtobufCFieldDescriptor *f, void *dst, const void *src)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char *s = strdup(*(char *const *)src);
        if (s == NULL)
            return -1;
        *(char **)dst = s;
    } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
        const ProtobufCBinaryData *b = src;
        ProtobufCBinaryData *d = dst;
        d->data = malloc(b->len ? b->len : 1);
        if (d->data == NULL)
            return -1;
        if (b->len)
            memcpy(d->data, b->data, b->len);
        d->len = b->len;
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage *m = pb_clone(*(ProtobufCMessage *const *)src);
        if (m == NULL)
            return -1;
        *(ProtobufCMessage **)dst = m;
    } else {
        memcpy(dst, src, scalar_size(f->type));
    }
    return 0;
}

static int merge_repeated(const ProtobufCFieldDescriptor *f, ProtobufCMessage *dst,
                          const ProtobufCMessage *src)
{
    size_t *dn = MEMBER(dst, f->quantifier_offset);
    size_t sn = *(const size_t *)CMEMBER(src, f->quantifier_offset);
    if (sn == 0)
        return 0;
    size_t es = scalar_size(f->type);
    uint8_t **darr = MEMBER(dst, f->offset);
    const uint8_t *sarr = *(uint8_t *const *)CMEMBER(src, f->offset);
    uint8_t *grown = realloc(*darr, (*dn + sn) * es);
    if (grown == NULL)
        return -1;
    *darr = grown;
    for (size_t i = 0; i < sn; i++) {
        if (copy_value(f, grown + (*dn) * es, sarr + i * es) != 0)
            return -1;
        (*dn)++;
    }
    return 0;
}

/* Whether src has field f set, proto3 style. */
static int src_has(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *src)
{
    const void *slot = CMEMBER(src, f->offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)CMEMBER(src, f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        return *(const protobuf_c_boolean *)CMEMBER(src, f->quantifier_offset);
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)slot)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)slot != NULL;
    default:
        return !is_zero(slot, scalar_size(f->type));
    }
}

/* Clears the oneof member dst holds when it is not f. */
static void clear_other_oneof_member(const ProtobufCMessageDescriptor *d,
                                     const ProtobufCFieldDescriptor *f, ProtobufCMessage *dst)
{
    uint32_t *dcase = MEMBER(dst, f->quantifier_offset);
    if (*dcase == 0 || *dcase == f->id)
        return;
    const ProtobufCFieldDescriptor *old = protobuf_c_message_descriptor_get_field(d, *dcase);
    if (old)
        free_value(old, MEMBER(dst, old->offset));
    memset(MEMBER(dst, f->offset), 0, scalar_size(f->type));
    *dcase = 0;
}

static int merge_singular(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                          ProtobufCMessage *dst, const ProtobufCMessage *src)
{
    void *dslot = MEMBER(dst, f->offset);
    const void *sslot = CMEMBER(src, f->offset);
    int oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
    int dst_has = oneof ? *(const uint32_t *)MEMBER(dst, f->quantifier_offset) == f->id
                        : (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)dslot != NULL);

    if (oneof)
        clear_other_oneof_member(d, f, dst);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && dst_has)
        return pb_merge(*(ProtobufCMessage **)dslot, *(ProtobufCMessage *const *)sslot);
    if (dst_has || f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES)
        free_value(f, dslot);
    if (copy_value(f, dslot, sslot) != 0)
        return -1;
    if (oneof)
        *(uint32_t *)MEMBER(dst, f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        *(protobuf_c_boolean *)MEMBER(dst, f->quantifier_offset) = 1;
    return 0;
}

int pb_merge(ProtobufCMessage *dst, const ProtobufCMessage *src)
{
    const ProtobufCMessageDescriptor *d = dst->descriptor;
    if (src->descriptor != d)
        return -1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        int rc;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            rc = merge_repeated(f, dst, src);
        else if (src_has(f, src))
            rc = merge_singular(d, f, dst, src);
        else
            rc = 0;
        if (rc != 0)
            return -1;
    }
    return 0;
}
