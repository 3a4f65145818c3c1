#include "schemas_int.h"
#include "prime/embedded.h"
#include "prime/fingerprint.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern const prime_embedded_file_t prime_event_schemas[];

/* The envelope every event starts with, in this order; workers rely on it. */
static const struct {
    const char *name;
    field_kind_t kind;
    bool nullable;
} envelope[PRIME_ENVELOPE_FIELDS] = {
    {"event_id", KIND_STRING, false},
    {"event_type", KIND_STRING, false},
    {"occurred_at", KIND_LONG, false},
    {"actor_user_id", KIND_STRING, false},
    {"owner_user_id", KIND_STRING, false},
    {"device_id", KIND_STRING, true},
    {"trace_id", KIND_STRING, true},
};

static const struct {
    const char *name;
    field_check_t check;
} check_names[] = {
    {"uuid", CHECK_UUID}, {"event_type", CHECK_EVENT_TYPE}, {"email", CHECK_EMAIL},
    {"username", CHECK_USERNAME}, {"url", CHECK_URL}, {"bpm", CHECK_BPM},
    {"musical_key", CHECK_MUSICAL_KEY}, {"time_signature", CHECK_TIME_SIGNATURE},
    {"lufs", CHECK_LUFS}, {"sample_rate", CHECK_SAMPLE_RATE}, {"bit_depth", CHECK_BIT_DEPTH},
    {"channels", CHECK_CHANNELS}, {"nonneg", CHECK_NONNEG}, {"positive", CHECK_POSITIVE},
    {"confidence", CHECK_CONFIDENCE}, {"json", CHECK_JSON}, {"json_object", CHECK_JSON_OBJECT},
    {"json_array", CHECK_JSON_ARRAY}, {"secret_hash", CHECK_SECRET_HASH}, {"inet", CHECK_INET},
    {"storage_path", CHECK_STORAGE_PATH}, {"mime_type", CHECK_MIME_TYPE},
    {"audio_format", CHECK_AUDIO_FORMAT}, {"credential_type", CHECK_CREDENTIAL_TYPE},
    {"measured_lufs", CHECK_MEASURED_LUFS}, {"measured_sample_rate", CHECK_MEASURED_SAMPLE_RATE},
    {"measured_dr", CHECK_MEASURED_DR},
};

/* Strings without a prime.max_length get this cap (bytes). */
#define DEFAULT_MAX_STRING 1024
#define DEFAULT_MAX_ITEMS 1000

/* avro-c sizes its allocations from lengths read off the wire, and when a
 * string or bytes read then runs out of input it returns the error without
 * freeing the buffer it allocated (read_string/read_bytes in avro-c 1.11).
 * A consumer fed forged messages would grow without bound. body_scan()
 * (scan.c) now checks every length and count before avro-c reads, and every
 * avro-c allocation still goes through this hook, as a second line:
 *   - a new allocation past a fixed bound, or during a decode past a bound
 *     derived from the message size, is refused (no legitimate value of a
 *     message needs more);
 *   - the growth of a block avro-c already has is never refused: when
 *     avro_raw_array_ensure_size() is refused it sets the array's storage to
 *     NULL and keeps its count, and freeing the value then walks NULL
 *     (issue 16). Only a real out-of-memory can fail it; a decode notes it
 *     ("torn") so that the value is not walked;
 *   - during a decode on this thread, keeps the set of live allocations, so
 *     that after a failed decode (and after the partial value is freed)
 *     what is left can only be avro-c's orphans, and is freed. */
#define AVRO_MAX_ALLOCATION (64u * 1024u * 1024u)

typedef struct alloc_track {
    bool on;
    bool lost;     /* the live set could not grow: leftovers are not freed */
    bool torn;     /* a block's growth failed: avro-c's value is inconsistent */
    size_t limit;
    void **live;
    size_t n, cap;
} alloc_track_t;

static _Thread_local alloc_track_t track;

static void track_remove(void *p)
{
    for (size_t i = track.n; i-- > 0;)
        if (track.live[i] == p) {
            track.live[i] = track.live[--track.n];
            return;
        }
}

static void track_add(void *p)
{
    if (track.n == track.cap) {
        size_t cap = track.cap ? track.cap * 2 : 64;
        void **grown = realloc(track.live, cap * sizeof(*grown));
        if (!grown) {
            track.lost = true;
            return;
        }
        track.live = grown;
        track.cap = cap;
    }
    track.live[track.n++] = p;
}

static void *bounded_avro_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    void *out;

    (void)ud;
    (void)osize;
    if (nsize == 0) {
        if (track.on && ptr)
            track_remove(ptr);
        free(ptr);
        return NULL;
    }
    if (!ptr && (nsize > AVRO_MAX_ALLOCATION || (track.on && nsize > track.limit)))
        return NULL;
    if (track.on && ptr)
        track_remove(ptr);
    out = realloc(ptr, nsize);
    if (track.on && (out || ptr))
        track_add(out ? out : ptr); /* on failure ptr is still live */
    if (track.on && ptr && !out)
        track.torn = true;
    return out;
}

void decode_track_begin(size_t message_len)
{
    /* Arrays grow their element storage by doubling, so a value may take a
     * multiple of its encoded size; strings never exceed the message. */
    track.limit = message_len * 64 + 65536;
    track.n = 0;
    track.lost = false;
    track.torn = false;
    track.on = true;
}

bool decode_track_torn(void)
{
    return track.torn;
}

void decode_track_end(bool failed)
{
    if (failed && !track.lost)
        for (size_t i = 0; i < track.n; i++)
            free(track.live[i]);
    track.n = 0;
    track.on = false;
}

static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;

static void install_allocator(void)
{
    avro_set_allocator(bounded_avro_alloc, NULL);
}

static int parse_field_type(json_t *type, field_desc_t *f)
{
    const char *t, *logical;

    if (json_is_array(type)) {
        if (json_array_size(type) != 2 || !json_is_string(json_array_get(type, 0)) ||
            strcmp(json_string_value(json_array_get(type, 0)), "null") != 0)
            return -1;
        f->nullable = true;
        type = json_array_get(type, 1);
    }
    if (json_is_object(type)) {
        t = json_string_value(json_object_get(type, "type"));
        logical = json_string_value(json_object_get(type, "logicalType"));
        if (!t)
            return -1;
        if (!strcmp(t, "array")) {
            json_t *items = json_object_get(type, "items");
            if (!json_is_string(items) || strcmp(json_string_value(items), "string"))
                return -1;
            f->kind = KIND_STRING_ARRAY;
            return 0;
        }
        if (logical && !strcmp(logical, "timestamp-micros") && !strcmp(t, "long"))
            f->timestamp = true;
        else if (logical && strcmp(logical, "uuid"))
            return -1;
    } else if (json_is_string(type)) {
        t = json_string_value(type);
    } else {
        return -1;
    }
    if (!strcmp(t, "string"))
        f->kind = KIND_STRING;
    else if (!strcmp(t, "int"))
        f->kind = KIND_INT;
    else if (!strcmp(t, "long"))
        f->kind = KIND_LONG;
    else if (!strcmp(t, "double"))
        f->kind = KIND_DOUBLE;
    else if (!strcmp(t, "boolean"))
        f->kind = KIND_BOOLEAN;
    else
        return -1;
    return 0;
}

prime_errcode_t parse_field(const char *file, json_t *jf, field_desc_t *f, prime_error_t *err)
{
    json_t *v;

    memset(f, 0, sizeof(*f));
    f->name = json_string_value(json_object_get(jf, "name"));
    if (!f->name)
        return prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: a field has no name", file);
    if (parse_field_type(json_object_get(jf, "type"), f))
        return prime_error_set(err, PRIME_ERR_SCHEMA, f->name,
                               "%s: type not supported by the event model (string, int, long, "
                               "double, boolean, array of string, or [\"null\", one of those])",
                               file);
    f->max_length = DEFAULT_MAX_STRING;
    f->max_items = DEFAULT_MAX_ITEMS;
    if ((v = json_object_get(jf, "prime.check"))) {
        const char *name = json_string_value(v);
        size_t i;
        for (i = 0; name && i < sizeof(check_names) / sizeof(check_names[0]); i++)
            if (!strcmp(name, check_names[i].name))
                break;
        if (!name || i == sizeof(check_names) / sizeof(check_names[0]))
            return prime_error_set(err, PRIME_ERR_SCHEMA, f->name, "%s: unknown prime.check", file);
        f->check = check_names[i].check;
    }
    if ((v = json_object_get(jf, "prime.one_of"))) {
        size_t i;
        json_t *s;
        if (!json_is_array(v))
            return prime_error_set(err, PRIME_ERR_SCHEMA, f->name, "%s: prime.one_of must be an array", file);
        json_array_foreach(v, i, s) if (!json_is_string(s))
            return prime_error_set(err, PRIME_ERR_SCHEMA, f->name, "%s: prime.one_of holds a non-string", file);
        f->one_of = v;
    }
    if ((v = json_object_get(jf, "prime.max_length"))) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return prime_error_set(err, PRIME_ERR_SCHEMA, f->name, "%s: bad prime.max_length", file);
        f->max_length = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(jf, "prime.max_items"))) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return prime_error_set(err, PRIME_ERR_SCHEMA, f->name, "%s: bad prime.max_items", file);
        f->max_items = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(jf, "prime.max"))) {
        if (!json_is_number(v) || (f->kind != KIND_INT && f->kind != KIND_LONG && f->kind != KIND_DOUBLE))
            return prime_error_set(err, PRIME_ERR_SCHEMA, f->name, "%s: prime.max needs a number field", file);
        f->has_max = true;
        f->max = json_number_value(v);
    }
    if ((v = json_object_get(jf, "prime.column"))) {
        f->column = json_string_value(v);
        if (!f->column || !strchr(f->column, '.'))
            return prime_error_set(err, PRIME_ERR_SCHEMA, f->name, "%s: prime.column must be \"table.column\"", file);
    }
    f->default_value = json_object_get(jf, "default");
    return PRIME_OK;
}

static void type_release(prime_event_type_t *t)
{
    free(t->name);
    free(t->topic);
    free(t->schema_json);
    free(t->canonical);
    free(t->fields);
    free(t->by_name);
    if (t->iface)
        avro_value_iface_decref(t->iface);
    if (t->schema)
        avro_schema_decref(t->schema);
    json_decref(t->json);
}

static prime_errcode_t type_load(prime_registry_t *reg, const prime_embedded_file_t *file,
                                 prime_event_type_t *t, prime_error_t *err)
{
    json_error_t jerr;
    json_t *fields, *jf, *req;
    const char *name, *topic;
    size_t i;

    memset(t, 0, sizeof(*t));
    t->reg = reg;
    t->schema_json = strndup((const char *)file->data, file->len);
    if (!t->schema_json)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    t->json = json_loadb(t->schema_json, file->len, 0, &jerr);
    if (!t->json)
        return prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: line %d: %s", file->name,
                               jerr.line, jerr.text);
    name = json_string_value(json_object_get(t->json, "prime.event_type"));
    topic = json_string_value(json_object_get(t->json, "prime.topic"));
    if (!name || !topic)
        return prime_error_set(err, PRIME_ERR_SCHEMA, NULL,
                               "%s: needs prime.event_type and prime.topic", file->name);
    t->name = strdup(name);
    t->topic = strdup(topic);
    if (!t->name || !t->topic)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");

    if (avro_schema_from_json_length(t->schema_json, file->len, &t->schema))
        return prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: %s", file->name, avro_strerror());
    t->iface = avro_generic_class_from_schema(t->schema);
    if (!t->iface)
        return prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: %s", file->name, avro_strerror());
    t->canonical = prime_avro_canonical_form(t->schema_json, file->len, err);
    if (!t->canonical)
        return err ? err->code : PRIME_ERR_SCHEMA;
    t->fingerprint = prime_avro_crc64(t->canonical, strlen(t->canonical));

    fields = json_object_get(t->json, "fields");
    t->nfields = json_array_size(fields);
    if (t->nfields < PRIME_ENVELOPE_FIELDS || t->nfields > MAX_EVENT_FIELDS)
        return prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: needs the envelope and at most %d fields",
                               file->name, MAX_EVENT_FIELDS);
    t->fields = calloc(t->nfields, sizeof(*t->fields));
    t->by_name = calloc(t->nfields, sizeof(*t->by_name));
    if (!t->fields || !t->by_name)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    json_array_foreach(fields, i, jf) {
        prime_errcode_t rc = parse_field(file->name, jf, &t->fields[i], err);
        if (rc)
            return rc;
        if (i < PRIME_ENVELOPE_FIELDS &&
            (strcmp(t->fields[i].name, envelope[i].name) || t->fields[i].kind != envelope[i].kind ||
             t->fields[i].nullable != envelope[i].nullable))
            return prime_error_set(err, PRIME_ERR_SCHEMA, t->fields[i].name,
                                   "%s: envelope field %zu must be %s", file->name, i, envelope[i].name);
    }
    /* Insertion sort: at most 64 fields, and no shared state (qsort would
     * need the type through a global). */
    for (i = 0; i < t->nfields; i++) {
        size_t k = i;
        for (; k > 0 && strcmp(t->fields[t->by_name[k - 1]].name, t->fields[i].name) > 0; k--)
            t->by_name[k] = t->by_name[k - 1];
        t->by_name[k] = i;
    }
    req = json_object_get(t->json, "prime.requires");
    json_array_foreach(req, i, jf) {
        if (json_is_string(jf) && !strcmp(json_string_value(jf), "device_id"))
            t->requires_device_id = true;
        else
            return prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: prime.requires supports device_id only",
                                   file->name);
    }
    return PRIME_OK;
}

static int cmp_writer(const void *a, const void *b)
{
    uint64_t x = ((const writer_schema_t *)a)->fingerprint, y = ((const writer_schema_t *)b)->fingerprint;
    return x < y ? -1 : x > y;
}

static int cmp_type_name(const void *a, const void *b)
{
    return strcmp(((const prime_event_type_t *)a)->name, ((const prime_event_type_t *)b)->name);
}

/* A schema file: "<type>/v<N>.avsc", N from 1. */
typedef struct version_file {
    const prime_embedded_file_t *file;
    size_t type_len; /* the "<type>" prefix of file->name */
    unsigned long version;
} version_file_t;

/* By type, then version. */
static int cmp_version_file(const void *a, const void *b)
{
    const version_file_t *x = a, *y = b;
    int c = strncmp(x->file->name, y->file->name, x->type_len < y->type_len ? x->type_len : y->type_len);

    if (c || x->type_len != y->type_len)
        return c ? c : (x->type_len < y->type_len ? -1 : 1);
    return x->version < y->version ? -1 : x->version > y->version;
}

static bool same_type(const version_file_t *x, const version_file_t *y)
{
    return x->type_len == y->type_len && !strncmp(x->file->name, y->file->name, x->type_len);
}

static prime_errcode_t parse_version_name(const prime_embedded_file_t *file, version_file_t *vf, prime_error_t *err)
{
    const char *slash = strchr(file->name, '/'), *digits, *end;

    vf->file = file;
    if (slash && slash[1] == 'v' && slash[2] >= '1' && slash[2] <= '9') {
        digits = slash + 2;
        vf->version = strtoul(digits, (char **)&end, 10);
        vf->type_len = (size_t)(slash - file->name);
        if (vf->type_len && !strcmp(end, ".avsc") && !strchr(slash + 1, '/'))
            return PRIME_OK;
    }
    return prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: schema files are named <event type>/v<N>.avsc, N from 1",
                           file->name);
}

static prime_errcode_t writer_prepare(const prime_event_type_t *reader, const char *json, size_t len,
                                      writer_schema_t *w, prime_error_t *err);
static void writer_release(writer_schema_t *w);

/* An older version names the event type of its folder (the newest is
 * checked as it loads). */
static prime_errcode_t check_folder(const version_file_t *vf, prime_error_t *err)
{
    json_t *j = json_loadb((const char *)vf->file->data, vf->file->len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "prime.event_type"));
    prime_errcode_t rc = PRIME_OK;

    if (!name || strlen(name) != vf->type_len || strncmp(name, vf->file->name, vf->type_len))
        rc = prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "prime.event_type is %s, not the folder's name",
                             name ? name : "missing");
    json_decref(j);
    return rc;
}

/* A version and the next one (not the newest, which the registry's
 * add_writer_schema checks): the next must read what the version wrote. */
static prime_errcode_t check_step(prime_registry_t *reg, const prime_embedded_file_t *older,
                                  const prime_embedded_file_t *newer, prime_error_t *err)
{
    prime_event_type_t next;
    writer_schema_t w = {0};
    prime_errcode_t rc;

    if (!(rc = type_load(reg, newer, &next, err)))
        rc = writer_prepare(&next, (const char *)older->data, older->len, &w, err);
    writer_release(&w);
    type_release(&next);
    return rc;
}

prime_registry_t *prime_registry_new_from(const prime_embedded_file_t *files, prime_error_t *err)
{
    prime_registry_t *reg;
    version_file_t *vf = NULL;
    size_t n = 0, ntypes = 0;

    pthread_once(&allocator_once, install_allocator);
    while (files[n].name)
        n++;
    reg = calloc(1, sizeof(*reg));
    if (!reg || !(vf = calloc(n + 1, sizeof(*vf))) || !(reg->types = calloc(n + 1, sizeof(*reg->types))) ||
        !(reg->writers = calloc(n + 1, sizeof(*reg->writers)))) {
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        goto fail;
    }
    reg->limits.max_message_bytes = PRIME_DEFAULT_MAX_MESSAGE_BYTES;
    reg->limits.max_json_bytes = PRIME_DEFAULT_MAX_JSON_BYTES;
    for (size_t i = 0; i < n; i++)
        if (parse_version_name(&files[i], &vf[i], err))
            goto fail;
    qsort(vf, n, sizeof(*vf), cmp_version_file);
    /* Each type's newest version is its current schema. */
    for (size_t i = 0, first = 0; i < n; i++) {
        prime_event_type_t *t;
        if (!same_type(&vf[i], &vf[first]))
            first = i;
        if (vf[i].version != i - first + 1) {
            prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: versions go v1, v2, ... without gaps (v%zu is missing)",
                            vf[i].file->name, i - first + 1);
            goto fail;
        }
        if (i + 1 < n && same_type(&vf[i + 1], &vf[i]))
            continue; /* not the newest */
        t = &reg->types[ntypes];
        reg->ntypes = ++ntypes;
        if (type_load(reg, vf[i].file, t, err))
            goto fail;
        if (strlen(t->name) != vf[i].type_len || strncmp(t->name, vf[i].file->name, vf[i].type_len)) {
            prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s: prime.event_type is %s, not the folder's name",
                            vf[i].file->name, t->name);
            goto fail;
        }
    }
    qsort(reg->types, reg->ntypes, sizeof(*reg->types), cmp_type_name);
    for (size_t i = 0; i < reg->ntypes; i++) {
        reg->writers[i].fingerprint = reg->types[i].fingerprint;
        reg->writers[i].type = &reg->types[i];
    }
    reg->nwriters = reg->ntypes;
    qsort(reg->writers, reg->nwriters, sizeof(*reg->writers), cmp_writer);
    for (size_t i = 1; i < reg->nwriters; i++)
        if (reg->writers[i].fingerprint == reg->writers[i - 1].fingerprint) {
            prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "%s and %s have the same fingerprint",
                            reg->writers[i].type->name, reg->writers[i - 1].type->name);
            goto fail;
        }
    /* Every released version stays readable: by the next version (so that
     * each change is compatible on its own) and by the newest (what the
     * programs read with). */
    for (size_t i = 0; i + 1 < n; i++) {
        prime_errcode_t rc;
        bool next_is_newest = i + 2 >= n || !same_type(&vf[i + 2], &vf[i]);
        if (!same_type(&vf[i + 1], &vf[i]))
            continue; /* vf[i] is its type's newest */
        if ((rc = check_folder(&vf[i], err)) ||
            (!next_is_newest && (rc = check_step(reg, vf[i].file, vf[i + 1].file, err))) ||
            (rc = prime_registry_add_writer_schema(reg, (const char *)vf[i].file->data, vf[i].file->len, err))) {
            if (err) { /* name the file: the message says what is wrong with it */
                prime_error_t inner = *err;
                prime_error_clear(err);
                prime_error_set(err, rc, inner.field[0] ? inner.field : NULL, "%s: %s", vf[i].file->name,
                                inner.message);
            }
            goto fail;
        }
    }
    free(vf);
    return reg;
fail:
    free(vf);
    prime_registry_free(reg);
    return NULL;
}

prime_registry_t *prime_registry_new(prime_error_t *err)
{
    return prime_registry_new_from(prime_event_schemas, err);
}

static void writer_release(writer_schema_t *w)
{
    if (w->iface)
        avro_value_iface_decref(w->iface);
    if (w->schema)
        avro_schema_decref(w->schema);
    free(w->fields);
    free(w->source);
    free(w->text);
    json_decref(w->json);
}

void prime_registry_free(prime_registry_t *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->nwriters; i++)
        writer_release(&reg->writers[i]);
    for (size_t i = 0; i < reg->ntypes; i++)
        type_release(&reg->types[i]);
    free(reg->writers);
    free(reg->types);
    free(reg);
}

/* Reads a writer schema's text into w and resolves it against the reader
 * type (w->source); no avro-c schema yet. On failure w holds what is to be
 * released. */
static prime_errcode_t writer_prepare(const prime_event_type_t *reader, const char *json, size_t len,
                                      writer_schema_t *w, prime_error_t *err)
{
    json_error_t jerr;
    json_t *fields, *jf;
    char *canonical;
    size_t i;
    prime_errcode_t rc;

    memset(w, 0, sizeof(*w));
    w->type = reader;
    if (!(w->json = json_loadb(json, len, 0, &jerr)))
        return prime_error_set(err, PRIME_ERR_JSON, NULL, "writer schema, line %d: %s", jerr.line, jerr.text);
    if (!(canonical = prime_avro_canonical_form(json, len, err)))
        return err ? err->code : PRIME_ERR_SCHEMA;
    w->fingerprint = prime_avro_crc64(canonical, strlen(canonical));
    free(canonical);
    fields = json_object_get(w->json, "fields");
    w->nfields = json_array_size(fields);
    if (!(w->fields = calloc(w->nfields + 1, sizeof(*w->fields))))
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    json_array_foreach(fields, i, jf) {
        if ((rc = parse_field("writer schema", jf, &w->fields[i], err)))
            return rc;
    }
    return resolve_prepare(w, err);
}

prime_errcode_t prime_registry_add_writer_schema(prime_registry_t *reg, const char *json, size_t len,
                                                 prime_error_t *err)
{
    json_t *parsed;
    const char *name;
    const prime_event_type_t *t;
    writer_schema_t w = {0}, *grown;
    prime_errcode_t rc;

    if (!reg || !json)
        return prime_error_set(err, PRIME_ERR_ARG, NULL, "registry and schema text are required");
    if (!(parsed = json_loadb(json, len, 0, NULL)))
        return prime_error_set(err, PRIME_ERR_JSON, NULL, "writer schema is not JSON");
    name = json_string_value(json_object_get(parsed, "prime.event_type"));
    t = name ? prime_registry_find(reg, name) : NULL;
    if (!t) {
        rc = prime_error_set(err, PRIME_ERR_UNKNOWN_TYPE, NULL,
                             "writer schema names no known prime.event_type (%s)", name ? name : "none");
        json_decref(parsed);
        return rc;
    }
    json_decref(parsed);
    if ((rc = writer_prepare(t, json, len, &w, err)))
        goto fail;
    if (registry_find_writer(reg, w.fingerprint)) {
        writer_release(&w);
        return PRIME_OK; /* already readable */
    }
    if (avro_schema_from_json_length(json, len, &w.schema) || !(w.iface = avro_generic_class_from_schema(w.schema))) {
        rc = prime_error_set(err, PRIME_ERR_SCHEMA, NULL, "writer schema: %s", avro_strerror());
        goto fail;
    }
    if (!(w.text = strndup(json, len)) || !(grown = realloc(reg->writers, (reg->nwriters + 1) * sizeof(*grown)))) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        goto fail;
    }
    reg->writers = grown;
    reg->writers[reg->nwriters++] = w;
    qsort(reg->writers, reg->nwriters, sizeof(*reg->writers), cmp_writer);
    return PRIME_OK;
fail:
    writer_release(&w);
    return rc;
}

const writer_schema_t *registry_find_writer(const prime_registry_t *reg, uint64_t fingerprint)
{
    writer_schema_t key = {.fingerprint = fingerprint};
    return bsearch(&key, reg->writers, reg->nwriters, sizeof(key), cmp_writer);
}

size_t prime_registry_writer_count(const prime_registry_t *reg)
{
    return reg->nwriters;
}

const char *prime_registry_writer_schema_json(const prime_registry_t *reg, size_t i)
{
    if (i >= reg->nwriters)
        return NULL;
    return reg->writers[i].text ? reg->writers[i].text : reg->writers[i].type->schema_json;
}

void prime_registry_set_limits(prime_registry_t *reg, const prime_limits_t *limits)
{
    reg->limits = *limits;
}

const prime_limits_t *prime_registry_limits(const prime_registry_t *reg)
{
    return &reg->limits;
}

size_t prime_registry_count(const prime_registry_t *reg)
{
    return reg->ntypes;
}

const prime_event_type_t *prime_registry_at(const prime_registry_t *reg, size_t i)
{
    return i < reg->ntypes ? &reg->types[i] : NULL;
}

const prime_event_type_t *prime_registry_find(const prime_registry_t *reg, const char *name)
{
    prime_event_type_t key = {.name = (char *)name};
    if (!name)
        return NULL;
    return bsearch(&key, reg->types, reg->ntypes, sizeof(key), cmp_type_name);
}

const char *prime_event_type_name(const prime_event_type_t *t) { return t->name; }
const char *prime_event_type_topic(const prime_event_type_t *t) { return t->topic; }
const char *prime_event_type_schema_json(const prime_event_type_t *t) { return t->schema_json; }
const char *prime_event_type_canonical_form(const prime_event_type_t *t) { return t->canonical; }
uint64_t prime_event_type_fingerprint(const prime_event_type_t *t) { return t->fingerprint; }
size_t prime_event_type_field_count(const prime_event_type_t *t) { return t->nfields; }

const char *prime_event_type_field_name(const prime_event_type_t *t, size_t i)
{
    return i < t->nfields ? t->fields[i].name : NULL;
}

prime_field_kind_t prime_event_type_field_kind(const prime_event_type_t *t, size_t i)
{
    static const prime_field_kind_t public_kind[] = {
        [KIND_STRING] = PRIME_FIELD_STRING,   [KIND_INT] = PRIME_FIELD_INT,
        [KIND_LONG] = PRIME_FIELD_LONG,       [KIND_DOUBLE] = PRIME_FIELD_DOUBLE,
        [KIND_BOOLEAN] = PRIME_FIELD_BOOLEAN, [KIND_STRING_ARRAY] = PRIME_FIELD_STRING_ARRAY,
    };
    if (i >= t->nfields)
        return PRIME_FIELD_STRING;
    return t->fields[i].timestamp ? PRIME_FIELD_TIMESTAMP : public_kind[t->fields[i].kind];
}

bool prime_event_type_field_is_secret(const prime_event_type_t *t, size_t i)
{
    return i < t->nfields && t->fields[i].check == CHECK_SECRET_HASH;
}

const char *prime_event_type_field_column(const prime_event_type_t *t, size_t i)
{
    return i < t->nfields ? t->fields[i].column : NULL;
}

int prime_event_type_field_index(const prime_event_type_t *t, const char *field)
{
    size_t lo = 0, hi = t->nfields;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t->fields[t->by_name[mid]].name, field);
        if (c == 0)
            return (int)t->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
