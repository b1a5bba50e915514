/*
 * cp_snapshot.h: one immutable version of what the mock control plane
 * serves: per resource type, every resource pre-serialized with its name and
 * a content hash (the Delta xDS resource version).
 *
 * Owns: each snapshot owns its strings and bytes; cp_snapshot_free() frees
 * all. Streams never keep pointers into a snapshot across a reload.
 * Threads: built and read by the control plane's one thread.
 * Sources: a scenario file (proto/xdsnode/scenario.proto as YAML or JSON,
 * through the shared proto3 JSON mapping) or the scale generator.
 */
#ifndef XDSNODE_CP_SNAPSHOT_H
#define XDSNODE_CP_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#define CP_TYPE_URL_CLUSTER "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define CP_TYPE_URL_CLA "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

typedef enum { CP_TYPE_CLUSTER = 0, CP_TYPE_CLA = 1, CP_TYPE_COUNT = 2 } cp_type;

/* "h" + 16 hex digits of a 64-bit FNV-1a hash, NUL-terminated. */
#define CP_HASH_LEN 18

typedef struct {
    char *name;
    uint8_t *data; /* serialized Cluster or ClusterLoadAssignment */
    size_t len;
    char version[CP_HASH_LEN];
} cp_resource;

typedef struct {
    cp_resource *items; /* in scenario order (duplicates kept, as written) */
    size_t n;
    size_t *by_name;    /* indexes into items, sorted by name */
} cp_resource_set;

typedef struct cp_sequence cp_sequence;

typedef struct {
    char *version;
    cp_resource_set types[CP_TYPE_COUNT];
    char **withheld; /* EDS names never answered (withhold_endpoints), sorted */
    size_t n_withheld;
    cp_sequence *sequence; /* the scenario's Sequence, NULL if none */
} cp_snapshot;

/* A scenario's Sequence (proto/xdsnode/scenario.proto): the versions the
 * control plane pushes by itself after the scenario's own. Owned by the
 * snapshot loaded from the scenario (cp_server_set_snapshot moves it to
 * the server); the snapshots it hands out carry no sequence. */
struct cp_sequence {
    unsigned count;       /* versions after the scenario's own */
    unsigned next;        /* k of the next version to build, 1..count+1 */
    char *base_version;   /* the scenario's version */
    cp_snapshot **steps;  /* the scenario with each step applied */
    size_t n_steps;
};

/* Type URL -> cp_type, or -1 for a type the mock does not serve. */
int cp_type_from_url(const char *type_url);
const char *cp_type_url(cp_type type);

/* Loads a scenario file (".json" -> JSON, anything else -> YAML). On error
 * returns -1 with "FILE: [line L, column C: | field.path: ]reason". */
int cp_snapshot_load_file(const char *path, cp_snapshot **out, char *err, size_t errlen);

/* The scale generator: n_clusters EDS clusters "cluster-%05u" with
 * n_endpoints endpoints each; generation g >= 1 gives version "gen-g", and
 * each generation after the first moves endpoint 0 of every cluster. */
int cp_snapshot_generate(unsigned n_clusters, unsigned n_endpoints, unsigned generation,
                         cp_snapshot **out, char *err, size_t errlen);

void cp_snapshot_free(cp_snapshot *snap);

/* Version k = seq->next of the sequence: a copy of steps[(k - 1) % n_steps]
 * with version "<base_version>-<k>"; advances seq->next. Returns 0, 1 when
 * all `count` versions were built (nothing in *out), -1 out of memory. */
int cp_sequence_next(cp_sequence *seq, cp_snapshot **out);
void cp_sequence_free(cp_sequence *seq);

/* A resource by name (the first one if the scenario repeats a name). */
const cp_resource *cp_snapshot_find(const cp_snapshot *snap, cp_type type, const char *name);

/* Whether the scenario withholds this resource (EDS names only). */
int cp_snapshot_withholds(const cp_snapshot *snap, cp_type type, const char *name);

/* FNV-1a 64 of bytes, formatted "h%016llx" into out[CP_HASH_LEN]. */
void cp_hash_bytes(const uint8_t *data, size_t len, char out[CP_HASH_LEN]);

#endif
