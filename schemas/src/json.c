/* Events <-> one line of JSON: the form prime-publish reads and
 * prime-codec prints. JSON-valued fields (project_data, ...) appear as JSON,
 * timestamps as RFC 3339 UTC with microseconds.
 *
 * This is the hot path of publishing, so it uses cJSON, which parses these
 * lines 4.7 times as fast as jansson on the same machine (835,000 against
 * 176,000 lines/s of our sample events; jansson remains for the schemas,
 * which avro-c reads with it anyway). cJSON keeps numbers as doubles and
 * accepts duplicate members, so both are checked here: integers must be
 * integral and exact (|n| <= 2^53), and a member may appear once. A JSON
 * document (project_data, ...) is never re-printed from cJSON's tree, which
 * would round its numbers: the event keeps the client's text, found and
 * checked against what jsonb accepts by json_scan() (jsontext.c). */
#include "schemas_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest magnitude a double holds exactly as an integer. */
#define EXACT_INTEGER 9007199254740992.0

/* Names a client might use to send a secret in the clear. The schemas have
 * only *_hash fields, so these are always refused, with a message that says
 * what to send instead. */
static const char *const plaintext_secrets[] = {
    "password", "new_password", "passwd", "token", "session_token", "access_token", "refresh_token",
    "reset_token", "verification_token", "secret", "api_key", "client_secret", NULL,
};

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "?";
}

static bool is_json_field(const field_desc_t *f)
{
    return f->check == CHECK_JSON || f->check == CHECK_JSON_OBJECT || f->check == CHECK_JSON_ARRAY;
}

/* Parses text as exactly one JSON value (whitespace around it allowed).
 * On failure sets *error_at to the 1-based column of the problem. */
cJSON *json_parse_exact(const char *text, size_t len, size_t *error_at)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);

    if (v) {
        while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end == text + len)
            return v;
        cJSON_Delete(v);
    }
    *error_at = end && end >= text ? (size_t)(end - text) + 1 : 1;
    return NULL;
}

bool json_too_deep(const char *text, size_t len)
{
    size_t depth = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > CJSON_NESTING_LIMIT)
                return true;
        } else if (c == ']' || c == '}') {
            depth -= depth > 0;
        }
    }
    return false;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first member name that appears twice in an object of v, or NULL. */
const char *json_find_duplicate(const cJSON *v)
{
    const cJSON *c;
    const char *dup = NULL;

    if (cJSON_IsObject(v)) {
        size_t n = 0, i = 0;
        const char **names;
        for (c = v->child; c; c = c->next)
            n++;
        if (n > 1 && (names = malloc(n * sizeof(*names)))) {
            for (c = v->child; c; c = c->next)
                names[i++] = c->string;
            qsort(names, n, sizeof(*names), cmp_names);
            for (i = 1; i < n && !dup; i++)
                if (!strcmp(names[i], names[i - 1]))
                    dup = names[i];
            free(names);
        }
    }
    for (c = cJSON_IsObject(v) || cJSON_IsArray(v) ? v->child : NULL; c && !dup; c = c->next)
        dup = json_find_duplicate(c);
    return dup;
}

static prime_errcode_t wrong_type(const field_desc_t *f, const char *expected, const cJSON *got, prime_error_t *err)
{
    return prime_error_set(err, PRIME_ERR_INVALID, f->name, "expected %s, got %s", expected, json_type_name(got));
}

/* text is NUL-terminated at len, as avro-c wants it (its length counts the
 * terminator), so it is handed over without a copy. */
static prime_errcode_t put_string(prime_event_t *ev, size_t i, const char *text, size_t len, prime_error_t *err)
{
    avro_value_t v;
    if (event_field_for_write(ev, i, &v) || event_store_string(ev, i, &v, text, len))
        return event_avro_failed(err, ev->type->fields[i].name);
    return PRIME_OK;
}

/* A member's value as the client wrote it, which is not NUL-terminated in
 * the line: copied with its terminator. */
static prime_errcode_t put_text(prime_event_t *ev, size_t i, const char *text, size_t len, prime_error_t *err)
{
    char small[1024], *copy = len < sizeof(small) ? small : malloc(len + 1);
    prime_errcode_t rc;

    if (!copy)
        return prime_error_set(err, PRIME_ERR_NOMEM, ev->type->fields[i].name, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    rc = put_string(ev, i, copy, len, err);
    if (copy != small)
        free(copy);
    return rc;
}

static prime_errcode_t integral(const field_desc_t *f, const cJSON *jv, double lo, double hi, prime_error_t *err)
{
    double d = jv->valuedouble;
    if (d != floor(d))
        return prime_error_set(err, PRIME_ERR_INVALID, f->name, "expected an integer, got %.17g", d);
    if (d < lo || d > hi)
        return prime_error_set(err, PRIME_ERR_INVALID, f->name, "integer out of the %s range",
                               hi > 2147483647.0 ? "exact JSON (2^53)" : "32-bit");
    return PRIME_OK;
}

/* Member jv for field i; raw is its text in the line, and expansion what
 * PostgreSQL adds printing its numbers. */
static prime_errcode_t set_from_json(prime_event_t *ev, size_t i, const cJSON *jv, const char *raw, size_t raw_len,
                                     size_t expansion, prime_error_t *err)
{
    const field_desc_t *f = &ev->type->fields[i];
    avro_value_t v;
    prime_errcode_t rc;

    switch (f->kind) {
    case KIND_STRING:
        if (cJSON_IsString(jv))
            return put_string(ev, i, jv->valuestring, strlen(jv->valuestring), err);
        if (is_json_field(f) && (cJSON_IsObject(jv) || cJSON_IsArray(jv))) {
            /* The client's text, byte for byte: json_scan() has checked it
             * as jsonb would, cJSON its structure. */
            bool checked = !json_find_duplicate(jv) && (f->check != CHECK_JSON_OBJECT || cJSON_IsObject(jv)) &&
                           (f->check != CHECK_JSON_ARRAY || cJSON_IsArray(jv));
            size_t limit = ev->type->reg->limits.max_json_bytes;
            if (expansion && raw_len + expansion > limit) /* validation sees the text only */
                return json_too_large(f->name, raw_len, expansion, limit, err);
            rc = put_text(ev, i, raw, raw_len, err);
            if (!rc && checked) /* validation need not parse it again */
                ev->json_checked |= 1ULL << i;
            return rc;
        }
        return wrong_type(f, is_json_field(f) ? "JSON (an object, an array or a string holding JSON)" : "a string",
                          jv, err);
    case KIND_STRING_ARRAY: {
        const cJSON *item;
        size_t k = 0;
        if (!cJSON_IsArray(jv))
            return wrong_type(f, "an array of strings", jv, err);
        if (event_field_for_write(ev, i, &v))
            return event_avro_failed(err, f->name);
        for (item = jv->child; item; item = item->next, k++) {
            avro_value_t element;
            if (!cJSON_IsString(item))
                return prime_error_set(err, PRIME_ERR_INVALID, f->name, "item %zu: expected a string, got %s", k,
                                       json_type_name(item));
            if (avro_value_append(&v, &element, NULL) ||
                event_store_string(ev, i, &element, item->valuestring, strlen(item->valuestring)))
                return event_avro_failed(err, f->name);
        }
        return PRIME_OK;
    }
    case KIND_INT:
        if (!cJSON_IsNumber(jv))
            return wrong_type(f, "an integer", jv, err);
        if ((rc = integral(f, jv, -2147483648.0, 2147483647.0, err)))
            return rc;
        if (event_field_for_write(ev, i, &v) || avro_value_set_int(&v, (int32_t)jv->valuedouble))
            return event_avro_failed(err, f->name);
        return PRIME_OK;
    case KIND_LONG: {
        int64_t micros;
        if (f->timestamp && cJSON_IsString(jv)) {
            if (prime_time_parse_rfc3339(jv->valuestring, &micros))
                return prime_error_set(err, PRIME_ERR_INVALID, f->name,
                                       "expected an RFC 3339 time like 2026-11-25T16:44:33.123456Z");
        } else if (!cJSON_IsNumber(jv)) {
            return wrong_type(f, f->timestamp ? "an RFC 3339 time or integer microseconds" : "an integer", jv, err);
        } else if ((rc = integral(f, jv, -EXACT_INTEGER, EXACT_INTEGER, err))) {
            return rc;
        } else {
            micros = (int64_t)jv->valuedouble;
        }
        if (event_field_for_write(ev, i, &v) || avro_value_set_long(&v, micros))
            return event_avro_failed(err, f->name);
        return PRIME_OK;
    }
    case KIND_DOUBLE:
        if (!cJSON_IsNumber(jv))
            return wrong_type(f, "a number", jv, err);
        if (event_field_for_write(ev, i, &v) || avro_value_set_double(&v, jv->valuedouble))
            return event_avro_failed(err, f->name);
        return PRIME_OK;
    case KIND_BOOLEAN:
        if (!cJSON_IsBool(jv))
            return wrong_type(f, "true or false", jv, err);
        if (event_field_for_write(ev, i, &v) || avro_value_set_boolean(&v, cJSON_IsTrue(jv)))
            return event_avro_failed(err, f->name);
        return PRIME_OK;
    }
    return PRIME_ERR_SCHEMA;
}

/* A member of the event's object and where its value lies in the line. */
typedef struct member {
    const cJSON *value;
    json_span_t span;
} member_t;

/* Maps each member to its field (members[i] for field i), refusing
 * unknown, secret and repeated members. spans[k] is the k-th member's. */
static prime_errcode_t map_members(const prime_event_type_t *t, const cJSON *obj, const json_span_t *spans,
                                   member_t *members, prime_error_t *err)
{
    const cJSON *m, *type_seen = NULL;
    size_t k = 0;

    for (m = obj->child; m; m = m->next, k++) {
        int i;
        if (!strcmp(m->string, "type")) {
            if (type_seen)
                return prime_error_set(err, PRIME_ERR_JSON, NULL, "duplicate member 'type'");
            type_seen = m;
            continue;
        }
        if ((i = prime_event_type_field_index(t, m->string)) >= 0) {
            if (members[i].value)
                return prime_error_set(err, PRIME_ERR_JSON, NULL, "duplicate member '%s'", m->string);
            members[i].value = m;
            members[i].span = spans[k];
            continue;
        }
        for (int s = 0; plaintext_secrets[s]; s++)
            if (!strcmp(m->string, plaintext_secrets[s]))
                return prime_error_set(err, PRIME_ERR_INVALID, m->string,
                                       "plaintext secrets are refused: send the hash (for example %s_hash, "
                                       "argon2 or bcrypt), never the secret itself",
                                       strcmp(m->string, "passwd") ? m->string : "password");
        return prime_error_set(err, PRIME_ERR_INVALID, m->string, "unknown field for %s", t->name);
    }
    return PRIME_OK;
}

/* Whether text names a field that holds a secret (password, token, salt,
 * a hash): a line that does not parse cannot say which bytes are which. */
static bool mentions_secret(const char *text, size_t len)
{
    static const char *const words[] = {"hash", "password", "passwd", "token", "salt", "secret", NULL};
    for (int w = 0; words[w]; w++) {
        size_t n = strlen(words[w]);
        for (size_t i = 0; i + n <= len; i++)
            if (!strncasecmp(text + i, words[w], n))
                return true;
    }
    return false;
}

prime_errcode_t prime_event_from_json(const prime_registry_t *reg, const char *text, size_t len,
                                      prime_event_t **out, prime_error_t *err)
{
    cJSON *obj;
    const cJSON *jtype, *m;
    member_t members_small[64], *members = members_small;
    json_span_t spans_small[64], *spans = spans_small;
    json_scan_opts_t scan = {.path = "", .bom = true};
    prime_event_t *ev = NULL;
    prime_errcode_t rc = PRIME_OK;
    size_t column, nmembers = 0;

    *out = NULL;
    if (!(obj = json_parse_exact(text, len, &column))) {
        if (json_too_deep(text, column < len ? column : len))
            return prime_error_set(err, PRIME_ERR_JSON, NULL,
                                   "invalid JSON: nested deeper than %d levels of arrays and objects at column %zu",
                                   CJSON_NESTING_LIMIT, column);
        if (column > len)
            return prime_error_set(err, PRIME_ERR_JSON, NULL, "invalid JSON: unexpected end of input at column %zu",
                                   column);
        /* A line that carries a secret (a password or token hash) is not
         * quoted back: the error may sit in the secret itself. */
        if (mentions_secret(text, len))
            return prime_error_set(err, PRIME_ERR_JSON, NULL,
                                   "invalid JSON at column %zu (not quoted: the line carries a secret)", column);
        /* text need not be NUL-terminated: show at most what is left. */
        int shown = (int)(len - (column - 1) < 12 ? len - (column - 1) : 12);
        return prime_error_set(err, PRIME_ERR_JSON, NULL, "invalid JSON at column %zu, near '%.*s'", column, shown,
                               text + column - 1);
    }
    if (!cJSON_IsObject(obj)) {
        rc = prime_error_set(err, PRIME_ERR_JSON, NULL, "expected a JSON object, got %s", json_type_name(obj));
        goto out;
    }
    /* What cJSON accepts but jsonb (or JSON) does not, anywhere in the
     * line, and where each member's value lies. */
    for (m = obj->child; m; m = m->next)
        nmembers++;
    if (nmembers > sizeof(spans_small) / sizeof(spans_small[0]) && !(spans = malloc(nmembers * sizeof(*spans)))) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    scan.members = spans;
    scan.nmembers = nmembers;
    if ((rc = json_scan(text, len, &scan, err)))
        goto out;
    jtype = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!jtype)
        jtype = cJSON_GetObjectItemCaseSensitive(obj, "event_type");
    if (!cJSON_IsString(jtype)) {
        rc = prime_error_set(err, PRIME_ERR_INVALID, "type", "expected the event type as a string, for example \"project.saved\"");
        goto out;
    }
    if (!(ev = prime_event_new(reg, jtype->valuestring, err))) {
        rc = err ? err->code : PRIME_ERR_UNKNOWN_TYPE;
        goto out;
    }
    if (ev->type->nfields > sizeof(members_small) / sizeof(members_small[0]) &&
        !(members = malloc(ev->type->nfields * sizeof(*members)))) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    memset(members, 0, ev->type->nfields * sizeof(*members));
    if ((rc = map_members(ev->type, obj, spans, members, err)))
        goto out;
    for (size_t i = 0; i < ev->type->nfields; i++) {
        const field_desc_t *f = &ev->type->fields[i];
        const cJSON *jv = members[i].value;

        if (!jv || cJSON_IsNull(jv)) {
            if (f->nullable)
                continue;          /* prime_event_new() made it null */
            if (i == 1)
                continue;          /* event_type: filled from "type" */
            if (i == 0 || i == 2)
                continue;          /* event_id, occurred_at: left unset, the producer generates them */
            if (f->kind == KIND_STRING_ARRAY && (!jv || (f->default_value && json_is_array(f->default_value))))
                continue;          /* an omitted list is empty */
            rc = prime_error_set(err, PRIME_ERR_INVALID, f->name, "required field is %s", jv ? "null" : "missing");
            goto out;
        }
        if ((rc = set_from_json(ev, i, jv, text + members[i].span.start, members[i].span.len,
                                members[i].span.expansion, err)))
            goto out;
    }
out:
    if (members != members_small)
        free(members);
    if (spans != spans_small)
        free(spans);
    cJSON_Delete(obj);
    if (rc) {
        prime_event_free(ev);
        return rc;
    }
    *out = ev;
    return PRIME_OK;
}

/* Adds field f's value to obj. Integers go in as their exact decimal text
 * (cJSON numbers are doubles); JSON-valued fields are embedded as JSON
 * when they parse, else as the string they are. */
static cJSON *field_to_json(const field_desc_t *f, avro_value_t *v)
{
    const char *s = NULL;
    size_t size = 0, n = 0;
    int32_t i32 = 0;
    int64_t i64 = 0;
    double d = 0;
    int b = 0;
    char text[40];

    switch (f->kind) {
    case KIND_STRING:
        avro_value_get_string(v, &s, &size);
        size = size ? size - 1 : 0;
        /* A document jsonb would take is embedded as it was written (its
         * numbers exact); on one line, else as the string it is, which
         * reads back the same. */
        if (is_json_field(f) && !memchr(s, '\n', size) && !memchr(s, '\r', size)) {
            size_t column;
            cJSON *doc = json_parse_exact(s, size, &column);
            bool strict = doc && !json_scan(s, size, &(json_scan_opts_t){.path = ""}, NULL);
            cJSON_Delete(doc);
            if (strict)
                return cJSON_CreateRaw(s);
        }
        return cJSON_CreateString(s); /* avro-c strings are NUL-terminated */
    case KIND_STRING_ARRAY: {
        cJSON *arr = cJSON_CreateArray();
        avro_value_t item;
        avro_value_get_size(v, &n);
        for (size_t k = 0; arr && k < n; k++) {
            avro_value_get_by_index(v, k, &item, NULL);
            avro_value_get_string(&item, &s, &size);
            cJSON_AddItemToArray(arr, cJSON_CreateString(s));
        }
        return arr;
    }
    case KIND_INT:
        avro_value_get_int(v, &i32);
        snprintf(text, sizeof(text), "%d", (int)i32);
        return cJSON_CreateRaw(text);
    case KIND_LONG:
        avro_value_get_long(v, &i64);
        if (f->timestamp) {
            prime_time_format_rfc3339(i64, text);
            return cJSON_CreateString(text);
        }
        snprintf(text, sizeof(text), "%lld", (long long)i64);
        return cJSON_CreateRaw(text);
    case KIND_DOUBLE:
        avro_value_get_double(v, &d);
        if (!isfinite(d)) /* JSON has no NaN or infinity */
            return cJSON_CreateString(isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
        return cJSON_CreateNumber(d);
    case KIND_BOOLEAN:
        avro_value_get_boolean(v, &b);
        return cJSON_CreateBool(b);
    }
    return cJSON_CreateNull();
}

char *prime_event_to_json(const prime_event_t *ev, prime_error_t *err)
{
    cJSON *obj = cJSON_CreateObject();
    char *text = NULL;

    if (!obj || !cJSON_AddStringToObject(obj, "type", ev->type->name))
        goto nomem;
    for (size_t i = 0; i < ev->type->nfields; i++) {
        const field_desc_t *f = &ev->type->fields[i];
        avro_value_t v;
        bool is_null;
        cJSON *item;

        if (i == 1)
            continue; /* event_type repeats "type" */
        if (event_field(ev, i, &v, &is_null)) {
            cJSON_Delete(obj);
            prime_error_set(err, PRIME_ERR_INVALID, f->name, "value missing");
            return NULL;
        }
        item = is_null ? cJSON_CreateNull() : field_to_json(f, &v);
        if (!item)
            goto nomem;
        cJSON_AddItemToObject(obj, f->name, item);
    }
    text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!text)
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    return text;
nomem:
    cJSON_Delete(obj);
    prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    return NULL;
}
