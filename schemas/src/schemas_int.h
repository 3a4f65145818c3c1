/* Internal to libprime_schemas: the bodies behind the opaque types. */
#ifndef PRIME_SCHEMAS_INT_H
#define PRIME_SCHEMAS_INT_H

#include <avro.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "prime/event.h"
#include "prime/registry.h"

/* The shapes of field the event model supports; the loader refuses others. */
typedef enum field_kind {
    KIND_STRING,
    KIND_INT,
    KIND_LONG,
    KIND_DOUBLE,
    KIND_BOOLEAN,
    KIND_STRING_ARRAY,
} field_kind_t;

/* Value rules named by "prime.check" in the schemas. */
typedef enum field_check {
    CHECK_NONE,
    CHECK_UUID,
    CHECK_EVENT_TYPE,
    CHECK_EMAIL,
    CHECK_USERNAME,
    CHECK_URL,
    CHECK_BPM,
    CHECK_MUSICAL_KEY,
    CHECK_TIME_SIGNATURE,
    CHECK_LUFS,
    CHECK_SAMPLE_RATE,
    CHECK_BIT_DEPTH,
    CHECK_CHANNELS,
    CHECK_NONNEG,
    CHECK_POSITIVE,
    CHECK_CONFIDENCE,
    CHECK_JSON,
    CHECK_JSON_OBJECT,
    CHECK_JSON_ARRAY,
    CHECK_SECRET_HASH,
    CHECK_INET,
    CHECK_STORAGE_PATH,
    CHECK_MIME_TYPE,
    CHECK_AUDIO_FORMAT,
    CHECK_CREDENTIAL_TYPE,
    CHECK_MEASURED_LUFS,
    CHECK_MEASURED_SAMPLE_RATE,
    CHECK_MEASURED_DR,
} field_check_t;

typedef struct field_desc {
    const char *name;      /* borrowed from the type's parsed schema JSON */
    field_kind_t kind;
    bool nullable;         /* ["null", T] */
    bool timestamp;        /* long with logicalType timestamp-micros */
    field_check_t check;
    json_t *one_of;        /* borrowed array of allowed strings, or NULL */
    json_t *default_value; /* borrowed "default", or NULL */
    size_t max_length;     /* bytes, for strings and array items */
    size_t max_items;      /* for arrays */
    bool has_max;          /* prime.max: the largest number its column holds */
    double max;
    const char *column;    /* prime.column: "table.column" it is stored in, or NULL */
} field_desc_t;

struct prime_event_type_s {
    const prime_registry_t *reg;
    char *name;
    char *topic;
    char *schema_json;
    char *canonical;
    uint64_t fingerprint;
    json_t *json;          /* parsed schema; owns the strings fields borrow */
    avro_schema_t schema;
    avro_value_iface_t *iface;
    field_desc_t *fields;
    size_t nfields;
    size_t *by_name;       /* field indexes sorted by name, for lookups */
    bool requires_device_id;
};

/* A schema a message may have been written with: a current one (iface
 * NULL: read straight into the event) or an older one, read into a value of
 * its own and resolved into the current type field by field. */
typedef struct writer_schema {
    uint64_t fingerprint;
    const prime_event_type_t *type;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    json_t *json;          /* parsed writer schema; owns what fields borrow */
    char *text;            /* its JSON text (an older one's; NULL for a current one) */
    field_desc_t *fields;  /* the writer's fields */
    size_t nfields;
    int *source;           /* per current field: writer field index, or -1 (default) */
} writer_schema_t;

struct prime_registry_s {
    prime_event_type_t *types;   /* sorted by name */
    size_t ntypes;
    writer_schema_t *writers;    /* sorted by fingerprint */
    size_t nwriters;
    prime_limits_t limits;
};

struct prime_event_s {
    const prime_event_type_t *type;
    avro_value_t value;
    /* Bit i: field i holds JSON text this library printed from a tree it
     * had already checked (kind, duplicate members), so validation need not
     * parse it again. Any setter of the field clears the bit. */
    uint64_t json_checked;
};

/* Events have at most this many fields (json_checked is a 64-bit mask). */
#define MAX_EVENT_FIELDS 64

const writer_schema_t *registry_find_writer(const prime_registry_t *reg, uint64_t fingerprint);

/* Around avro_value_read() in a decode (registry.c): between begin and
 * end, avro-c's allocations on this thread are tracked; end(true), called
 * after the partial values are freed, frees what avro-c left behind. */
void decode_track_begin(size_t message_len);
void decode_track_end(bool failed);
/* True when, since begin, avro-c was refused the growth of a block it had
 * (only a real out-of-memory can do that): its value may hold an array
 * whose storage is NULL with items counted, and must not be walked. */
bool decode_track_torn(void);

/* Checks a message body's structure against the writer's fields before
 * avro-c reads it (scan.c): lengths and block counts within the bytes left,
 * arrays within their max_items, union branches and booleans in range, no
 * trailing bytes. PRIME_ERR_DECODE naming the field otherwise. */
prime_errcode_t body_scan(const char *type, const field_desc_t *fields, size_t nfields, const void *body,
                          size_t len, prime_error_t *err);

/* Parses one field of a schema's JSON into f (registry.c). */
prime_errcode_t parse_field(const char *file, json_t *jf, field_desc_t *f, prime_error_t *err);

/* Avro schema resolution for the event model (resolve.c): checks that
 * writer w can be read as its current type and fills w->source; then moves
 * a decoded writer value into an event. */
prime_errcode_t resolve_prepare(writer_schema_t *w, prime_error_t *err);
prime_errcode_t resolve_into(const writer_schema_t *w, avro_value_t *written, prime_event_t *ev, prime_error_t *err);

/* Field i of the record; for a nullable field, the non-null branch, or
 * *is_null true. */
int event_field(const prime_event_t *ev, size_t i, avro_value_t *out, bool *is_null);
/* Field i made ready to write: a nullable field switched to its value
 * branch. */
int event_field_for_write(prime_event_t *ev, size_t i, avro_value_t *out);

/* Stores text (NUL-terminated at len) into v, field i's value or one of
 * its items. Every string that enters an event goes through here: a valid
 * UUID in a UUID field (prime.check "uuid", logicalType uuid) is stored in
 * canonical lower-case form, so no layer after the codec sees two
 * spellings of one id (issue 12). Decode does the same to what avro-c
 * read. Returns avro-c's status. */
int event_store_string(const prime_event_t *ev, size_t i, avro_value_t *v, const char *text, size_t len);

/* Sets err from avro-c's last error, naming field; returns the code. */
prime_errcode_t event_avro_failed(prime_error_t *err, const char *field);

/* Rules, shared by validation and JSON parsing. */
prime_errcode_t check_string(const prime_event_t *ev, const field_desc_t *f, const char *path,
                             const char *s, size_t len, prime_error_t *err);

/* JSON helpers (json.c, on cJSON): one value and nothing else after it;
 * the first member name repeated in any object of a document; whether
 * text nests deeper than cJSON parses (CJSON_NESTING_LIMIT), to say so
 * when a parse fails. */
struct cJSON;
struct cJSON *json_parse_exact(const char *text, size_t len, size_t *error_at);
bool json_too_deep(const char *text, size_t len);
const char *json_find_duplicate(const struct cJSON *v);

/* Where a value lies in JSON text: text + start, len bytes. */
typedef struct json_span {
    size_t start, len;
    size_t expansion; /* bytes PostgreSQL adds printing its numbers (1e400: 396) */
} json_span_t;

typedef struct json_scan_opts {
    const char *path;     /* names the document in errors ("project_data"); "" for an event line */
    bool bom;             /* a UTF-8 byte order mark may open the text, as cJSON allows */
    json_span_t *members; /* for an object: its first nmembers members' values, in order */
    size_t nmembers;
    void (*number)(void *ctx, const char *text, size_t len); /* each number, in order */
    void *ctx;
    size_t *expansion;    /* when given: bytes PostgreSQL adds printing the text's numbers */
} json_scan_opts_t;

/* Checks text that json_parse_exact() accepted against what PostgreSQL's
 * jsonb accepts (jsontext.c): no \u0000, no raw control characters, numbers
 * written as JSON writes them and within numeric's range. The error names
 * the path of the value at fault (opts->path, then ".member" and "[i]"). */
prime_errcode_t json_scan(const char *text, size_t len, const json_scan_opts_t *opts, prime_error_t *err);

/* The error for a document that PostgreSQL would print as len + expansion
 * bytes, over limit (max_json_bytes). */
prime_errcode_t json_too_large(const char *path, size_t len, size_t expansion, size_t limit, prime_error_t *err);

/* UTF-8 that PostgreSQL text takes: well formed, no NUL (validate.c). */
bool utf8_valid(const char *s, size_t len);

#include "prime/time.h"

#endif
