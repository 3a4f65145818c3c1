/* Events <-> one line of JSON: the form prime-publish reads and
 * prime-codec prints. JSON-valued fields (project_data, ...) appear as JSON,
 * timestamps as RFC 3339 UTC with microseconds. */
#include "schemas_int.h"
#include "prime/buf.h"

#include <stdlib.h>
#include <string.h>

/* Names a client might use to send a secret in the clear. The schemas have
 * only *_hash fields, so these are always refused, with a message that says
 * what to send instead. */
static const char *const plaintext_secrets[] = {
    "password", "new_password", "passwd", "token", "session_token", "access_token", "refresh_token",
    "reset_token", "verification_token", "secret", "api_key", "client_secret", NULL,
};

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static bool is_json_field(const field_desc_t *f)
{
    return f->check == CHECK_JSON || f->check == CHECK_JSON_OBJECT || f->check == CHECK_JSON_ARRAY;
}

static prime_errcode_t wrong_type(const field_desc_t *f, const char *expected, const json_t *got,
                                  prime_error_t *err)
{
    return prime_error_set(err, PRIME_ERR_INVALID, f->name, "expected %s, got %s", expected, json_type_name(got));
}

static prime_errcode_t set_from_json(prime_event_t *ev, const field_desc_t *f, json_t *jv, prime_error_t *err)
{
    switch (f->kind) {
    case KIND_STRING:
        if (json_is_string(jv))
            return prime_event_set_string(ev, f->name, json_string_value(jv), json_string_length(jv), err);
        if (is_json_field(f) && (json_is_object(jv) || json_is_array(jv))) {
            /* Compact, in the client's member order: the text is what JSONB
             * will normalise, so nothing is gained by reordering. */
            char *text = json_dumps(jv, JSON_COMPACT | JSON_ENCODE_ANY);
            prime_errcode_t rc;
            if (!text)
                return prime_error_set(err, PRIME_ERR_NOMEM, f->name, "out of memory");
            rc = prime_event_set_string(ev, f->name, text, strlen(text), err);
            free(text);
            return rc;
        }
        return wrong_type(f, is_json_field(f) ? "JSON (an object, an array or a string holding JSON)" : "a string",
                          jv, err);
    case KIND_STRING_ARRAY: {
        size_t i;
        json_t *item;
        if (!json_is_array(jv))
            return wrong_type(f, "an array of strings", jv, err);
        json_array_foreach(jv, i, item) {
            prime_errcode_t rc;
            if (!json_is_string(item))
                return prime_error_set(err, PRIME_ERR_INVALID, f->name, "item %zu: expected a string, got %s", i,
                                       json_type_name(item));
            if ((rc = prime_event_append_string(ev, f->name, json_string_value(item), json_string_length(item),
                                                err)))
                return rc;
        }
        return PRIME_OK;
    }
    case KIND_INT:
        if (!json_is_integer(jv))
            return wrong_type(f, "an integer", jv, err);
        if (json_integer_value(jv) < INT32_MIN || json_integer_value(jv) > INT32_MAX)
            return prime_error_set(err, PRIME_ERR_INVALID, f->name, "integer out of the 32-bit range");
        return prime_event_set_int(ev, f->name, (int32_t)json_integer_value(jv), err);
    case KIND_LONG:
        if (f->timestamp && json_is_string(jv)) {
            int64_t micros;
            if (prime_time_parse_rfc3339(json_string_value(jv), &micros))
                return prime_error_set(err, PRIME_ERR_INVALID, f->name,
                                       "expected an RFC 3339 time like 2026-11-25T16:44:33.123456Z");
            return prime_event_set_long(ev, f->name, micros, err);
        }
        if (!json_is_integer(jv))
            return wrong_type(f, f->timestamp ? "an RFC 3339 time or integer microseconds" : "an integer", jv, err);
        return prime_event_set_long(ev, f->name, (int64_t)json_integer_value(jv), err);
    case KIND_DOUBLE:
        if (!json_is_number(jv))
            return wrong_type(f, "a number", jv, err);
        return prime_event_set_double(ev, f->name, json_number_value(jv), err);
    case KIND_BOOLEAN:
        if (!json_is_boolean(jv))
            return wrong_type(f, "true or false", jv, err);
        return prime_event_set_bool(ev, f->name, json_is_true(jv), err);
    }
    return PRIME_ERR_SCHEMA;
}

static prime_errcode_t check_members(const prime_event_type_t *t, json_t *obj, prime_error_t *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v) {
        if (!strcmp(key, "type") || prime_event_type_field_index(t, key) >= 0)
            continue;
        for (int i = 0; plaintext_secrets[i]; i++)
            if (!strcmp(key, plaintext_secrets[i]))
                return prime_error_set(err, PRIME_ERR_INVALID, key,
                                       "plaintext secrets are refused: send the hash (for example %s_hash, "
                                       "argon2 or bcrypt), never the secret itself",
                                       strcmp(key, "passwd") ? key : "password");
        return prime_error_set(err, PRIME_ERR_INVALID, key, "unknown field for %s", t->name);
    }
    return PRIME_OK;
}

prime_errcode_t prime_event_from_json(const prime_registry_t *reg, const char *text, size_t len,
                                      prime_event_t **out, prime_error_t *err)
{
    json_error_t jerr;
    json_t *obj, *jtype;
    const char *type;
    prime_event_t *ev = NULL;
    prime_errcode_t rc = PRIME_OK;

    *out = NULL;
    obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return prime_error_set(err, PRIME_ERR_JSON, NULL, "invalid JSON at column %d: %s", jerr.column, jerr.text);
    if (!json_is_object(obj)) {
        rc = prime_error_set(err, PRIME_ERR_JSON, NULL, "expected a JSON object, got %s", json_type_name(obj));
        goto out;
    }
    jtype = json_object_get(obj, "type");
    if (!jtype)
        jtype = json_object_get(obj, "event_type");
    if (!json_is_string(jtype)) {
        rc = prime_error_set(err, PRIME_ERR_INVALID, "type", "expected the event type as a string, for example \"project.saved\"");
        goto out;
    }
    type = json_string_value(jtype);
    if (!(ev = prime_event_new(reg, type, err))) {
        rc = err ? err->code : PRIME_ERR_UNKNOWN_TYPE;
        goto out;
    }
    if ((rc = check_members(ev->type, obj, err)))
        goto out;
    for (size_t i = 0; i < ev->type->nfields; i++) {
        const field_desc_t *f = &ev->type->fields[i];
        json_t *jv = json_object_get(obj, f->name);

        if (!jv || json_is_null(jv)) {
            if (f->nullable)
                continue;          /* prime_event_new() made it null */
            if (i == 1)
                continue;          /* event_type: filled from "type" */
            if (f->kind == KIND_STRING_ARRAY && (!jv || (f->default_value && json_is_array(f->default_value))))
                continue;          /* an omitted list is empty */
            rc = prime_error_set(err, PRIME_ERR_INVALID, f->name, "required field is %s",
                                 jv ? "null" : "missing");
            goto out;
        }
        if ((rc = set_from_json(ev, f, jv, err)))
            goto out;
    }
out:
    json_decref(obj);
    if (rc) {
        prime_event_free(ev);
        return rc;
    }
    *out = ev;
    return PRIME_OK;
}

static json_t *field_to_json(const field_desc_t *f, avro_value_t *v)
{
    const char *s = NULL;
    size_t size = 0, n = 0;
    int32_t i32 = 0;
    int64_t i64 = 0;
    double d = 0;
    int b = 0;
    char when[40];

    switch (f->kind) {
    case KIND_STRING:
        avro_value_get_string(v, &s, &size);
        size = size ? size - 1 : 0;
        if (is_json_field(f)) {
            json_t *doc = json_loadb(s, size, JSON_DECODE_ANY, NULL);
            if (doc)
                return doc;
        }
        return json_stringn(s, size);
    case KIND_STRING_ARRAY: {
        json_t *arr = json_array();
        avro_value_t item;
        avro_value_get_size(v, &n);
        for (size_t k = 0; k < n; k++) {
            avro_value_get_by_index(v, k, &item, NULL);
            avro_value_get_string(&item, &s, &size);
            json_array_append_new(arr, json_stringn(s, size ? size - 1 : 0));
        }
        return arr;
    }
    case KIND_INT:
        avro_value_get_int(v, &i32);
        return json_integer(i32);
    case KIND_LONG:
        avro_value_get_long(v, &i64);
        if (f->timestamp) {
            prime_time_format_rfc3339(i64, when);
            return json_string(when);
        }
        return json_integer(i64);
    case KIND_DOUBLE:
        avro_value_get_double(v, &d);
        return json_real(d);
    case KIND_BOOLEAN:
        avro_value_get_boolean(v, &b);
        return json_boolean(b);
    }
    return json_null();
}

char *prime_event_to_json(const prime_event_t *ev, prime_error_t *err)
{
    json_t *obj = json_object();
    char *text;

    json_object_set_new(obj, "type", json_string(ev->type->name));
    for (size_t i = 0; i < ev->type->nfields; i++) {
        const field_desc_t *f = &ev->type->fields[i];
        avro_value_t v;
        bool is_null;

        if (i == 1)
            continue; /* event_type repeats "type" */
        if (event_field(ev, i, &v, &is_null)) {
            json_decref(obj);
            prime_error_set(err, PRIME_ERR_INVALID, f->name, "value missing");
            return NULL;
        }
        json_object_set_new(obj, f->name, is_null ? json_null() : field_to_json(f, &v));
    }
    text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(obj);
    if (!text)
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    return text;
}
