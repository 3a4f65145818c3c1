/* Avro schema resolution ("Schema Resolution" in the specification) for the
 * shapes the event model allows: records of primitives, ["null", T] unions
 * and arrays of strings. avro-c decodes the writer's bytes; its own
 * resolver cannot apply reader defaults (it refuses any reader field the
 * writer lacks), which is exactly the change we promise is compatible:
 * adding an optional field. So the record-level rules live here:
 *   - fields match by name; writer fields the reader lacks are skipped;
 *   - a reader field the writer lacks takes the reader's default;
 *   - int promotes to long and double, long to double;
 *   - a writer union resolves through its branch; a writer union into a
 *     reader field that is not one is refused (its null has nowhere to go);
 *   - prime.one_of, the model's enum, may grow, never lose a value. */
#include "schemas_int.h"

#include <stdlib.h>
#include <string.h>

static const char *short_name(const char *name)
{
    const char *dot = name ? strrchr(name, '.') : NULL;
    return dot ? dot + 1 : name;
}

static bool promotes(field_kind_t from, field_kind_t to)
{
    return from == to || (from == KIND_INT && (to == KIND_LONG || to == KIND_DOUBLE)) ||
           (from == KIND_LONG && to == KIND_DOUBLE);
}

static const char *kind_name(field_kind_t k)
{
    static const char *const names[] = {"string", "int", "long", "double", "boolean", "array of strings"};
    return names[k];
}

static bool default_fits(const field_desc_t *f)
{
    json_t *d = f->default_value;

    if (!d)
        return false;
    if (json_is_null(d))
        return f->nullable;
    switch (f->kind) {
    case KIND_STRING: return json_is_string(d);
    case KIND_STRING_ARRAY: return json_is_array(d) && json_array_size(d) == 0;
    case KIND_INT:
    case KIND_LONG: return json_is_integer(d);
    case KIND_DOUBLE: return json_is_number(d);
    case KIND_BOOLEAN: return json_is_boolean(d);
    }
    return false;
}

/* A value the writer field allows and the reader field does not, or NULL:
 * a reader one_of must hold every writer value; a writer without one_of
 * allowed "any value". */
static const char *one_of_missing(const field_desc_t *wf, const field_desc_t *rf)
{
    size_t i, k;
    json_t *wv, *rv;

    if (!rf->one_of)
        return NULL;
    if (!wf->one_of)
        return "any value";
    json_array_foreach(wf->one_of, i, wv) {
        bool found = false;
        json_array_foreach(rf->one_of, k, rv) found = found || json_equal(wv, rv);
        if (!found)
            return json_string_value(wv);
    }
    return NULL;
}

prime_errcode_t resolve_prepare(writer_schema_t *w, prime_error_t *err)
{
    const prime_event_type_t *t = w->type;
    size_t nw = json_array_size(json_object_get(w->json, "fields"));
    const char *wname = json_string_value(json_object_get(w->json, "name"));
    const char *rname = json_string_value(json_object_get(t->json, "name"));

    if (!wname || strcmp(short_name(wname), short_name(rname)))
        return prime_error_set(err, PRIME_ERR_SCHEMA, NULL,
                               "writer schema cannot be read as the current %s schema: record %s is not %s",
                               t->name, wname ? wname : "(unnamed)", rname);
    if (!(w->source = calloc(t->nfields, sizeof(*w->source))))
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < t->nfields; i++) {
        const field_desc_t *rf = &t->fields[i], *wf;
        const char *missing;
        w->source[i] = -1;
        for (size_t j = 0; j < nw; j++)
            if (!strcmp(w->fields[j].name, rf->name))
                w->source[i] = (int)j;
        if (w->source[i] < 0) {
            if (!default_fits(rf))
                return prime_error_set(err, PRIME_ERR_SCHEMA, rf->name,
                                       "writer schema cannot be read as the current %s schema: the field is not "
                                       "in the writer and has no usable default",
                                       t->name);
            continue;
        }
        wf = &w->fields[w->source[i]];
        if (!promotes(wf->kind, rf->kind))
            return prime_error_set(err, PRIME_ERR_SCHEMA, rf->name,
                                   "writer schema cannot be read as the current %s schema: written as %s, "
                                   "read as %s",
                                   t->name, kind_name(wf->kind), kind_name(rf->kind));
        /* A writer union's null branch has nowhere to go in a reader that
         * is not a union: the specification makes that an error of every
         * message that holds null, so the change is refused as a whole. */
        if (wf->nullable && !rf->nullable)
            return prime_error_set(err, PRIME_ERR_SCHEMA, rf->name,
                                   "writer schema cannot be read as the current %s schema: the writer allows "
                                   "null, the reader requires a value",
                                   t->name);
        /* prime.one_of is the event model's enum: a value the writer
         * allowed must still be allowed (the specification's enum rule),
         * or events already in the topics turn invalid. */
        if ((missing = one_of_missing(wf, rf)))
            return prime_error_set(err, PRIME_ERR_SCHEMA, rf->name,
                                   "writer schema cannot be read as the current %s schema: '%s' is allowed by the "
                                   "writer, not by the reader",
                                   t->name, missing);
    }
    return PRIME_OK;
}

static prime_errcode_t apply_default(prime_event_t *ev, const field_desc_t *f, prime_error_t *err)
{
    json_t *d = f->default_value;

    if (json_is_null(d))
        return prime_event_set_null(ev, f->name, err);
    switch (f->kind) {
    case KIND_STRING: return prime_event_set_string(ev, f->name, json_string_value(d), json_string_length(d), err);
    case KIND_STRING_ARRAY: return PRIME_OK; /* a new event's arrays are empty */
    case KIND_INT: return prime_event_set_int(ev, f->name, (int32_t)json_integer_value(d), err);
    case KIND_LONG: return prime_event_set_long(ev, f->name, (int64_t)json_integer_value(d), err);
    case KIND_DOUBLE: return prime_event_set_double(ev, f->name, json_number_value(d), err);
    case KIND_BOOLEAN: return prime_event_set_bool(ev, f->name, json_is_true(d), err);
    }
    return PRIME_ERR_SCHEMA;
}

static prime_errcode_t move_value(prime_event_t *ev, const field_desc_t *rf, const field_desc_t *wf,
                                  avro_value_t *v, prime_error_t *err)
{
    const char *s = NULL;
    size_t size = 0, n = 0;
    int32_t i32 = 0;
    int64_t i64 = 0;
    double d = 0;
    int b = 0;
    prime_errcode_t rc = PRIME_OK;

    switch (wf->kind) {
    case KIND_STRING:
        avro_value_get_string(v, &s, &size);
        return prime_event_set_string(ev, rf->name, s, size ? size - 1 : 0, err);
    case KIND_STRING_ARRAY:
        avro_value_get_size(v, &n);
        for (size_t k = 0; k < n && !rc; k++) {
            avro_value_t item;
            avro_value_get_by_index(v, k, &item, NULL);
            avro_value_get_string(&item, &s, &size);
            rc = prime_event_append_string(ev, rf->name, s, size ? size - 1 : 0, err);
        }
        return rc;
    case KIND_INT:
        avro_value_get_int(v, &i32);
        if (rf->kind == KIND_INT)
            return prime_event_set_int(ev, rf->name, i32, err);
        if (rf->kind == KIND_LONG)
            return prime_event_set_long(ev, rf->name, i32, err);
        return prime_event_set_double(ev, rf->name, i32, err);
    case KIND_LONG:
        avro_value_get_long(v, &i64);
        if (rf->kind == KIND_LONG)
            return prime_event_set_long(ev, rf->name, i64, err);
        return prime_event_set_double(ev, rf->name, (double)i64, err);
    case KIND_DOUBLE:
        avro_value_get_double(v, &d);
        return prime_event_set_double(ev, rf->name, d, err);
    case KIND_BOOLEAN:
        avro_value_get_boolean(v, &b);
        return prime_event_set_bool(ev, rf->name, b != 0, err);
    }
    return PRIME_ERR_SCHEMA;
}

prime_errcode_t resolve_into(const writer_schema_t *w, avro_value_t *written, prime_event_t *ev, prime_error_t *err)
{
    for (size_t i = 0; i < ev->type->nfields; i++) {
        const field_desc_t *rf = &ev->type->fields[i];
        const field_desc_t *wf;
        avro_value_t v, branch;
        int disc = 1;
        prime_errcode_t rc;

        if (w->source[i] < 0) {
            if ((rc = apply_default(ev, rf, err)))
                return rc;
            continue;
        }
        wf = &w->fields[w->source[i]];
        if (avro_value_get_by_index(written, (size_t)w->source[i], &v, NULL))
            return prime_error_set(err, PRIME_ERR_DECODE, rf->name, "field missing from the decoded value");
        if (wf->nullable) {
            if (avro_value_get_discriminant(&v, &disc))
                return prime_error_set(err, PRIME_ERR_DECODE, rf->name, "union without a branch");
            if (disc == 0) {
                if (!rf->nullable)
                    return prime_error_set(err, PRIME_ERR_DECODE, rf->name,
                                           "null in a message of an older schema, but required by the current one");
                if ((rc = prime_event_set_null(ev, rf->name, err)))
                    return rc;
                continue;
            }
            if (avro_value_get_current_branch(&v, &branch))
                return prime_error_set(err, PRIME_ERR_DECODE, rf->name, "union without a branch");
            v = branch;
        }
        if ((rc = move_value(ev, rf, wf, &v, err)))
            return rc;
    }
    return PRIME_OK;
}
