/* Parsing Canonical Form and CRC-64-AVRO, as the Avro specification defines
 * them ("Schema Fingerprints", "Transforming into Parsing Canonical Form").
 * avro-c offers neither; jansson parses the schema text. */
#include "prime/fingerprint.h"
#include "prime/buf.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & -(fp & 1));
        crc64_table[i] = fp;
    }
}

uint64_t prime_avro_crc64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t fp = CRC64_AVRO_EMPTY;

    pthread_once(&crc64_once, crc64_init);
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
    return fp;
}

static const char *const primitives[] = {
    "null", "boolean", "int", "long", "float", "double", "bytes", "string", NULL,
};

static int is_primitive(const char *s)
{
    for (int i = 0; primitives[i]; i++)
        if (!strcmp(s, primitives[i]))
            return 1;
    return 0;
}

typedef struct canon {
    prime_buf_t out;
    json_t *seen;       /* full names already written once: later uses are references */
    prime_error_t *err;
} canon_t;

static int canon_node(canon_t *c, json_t *node, const char *ns);

/* Names in this project are Avro names ([A-Za-z_][A-Za-z0-9_.]*), so quoting
 * needs no escapes; [STRINGS] asks for UTF-8 rather than \u escapes anyway. */
static void put_quoted(canon_t *c, const char *s)
{
    prime_buf_putc(&c->out, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            prime_buf_putc(&c->out, '\\');
        prime_buf_putc(&c->out, *s);
    }
    prime_buf_putc(&c->out, '"');
}

/* [FULLNAMES]: a dotted name is already full; otherwise it takes the
 * schema's own namespace, else the enclosing one. */
static char *full_name(const char *name, const char *own_ns, const char *enclosing_ns)
{
    const char *ns = own_ns ? own_ns : enclosing_ns;
    char *out;

    if (strchr(name, '.') || !ns || !*ns)
        return strdup(name);
    out = malloc(strlen(ns) + strlen(name) + 2);
    if (out)
        sprintf(out, "%s.%s", ns, name);
    return out;
}

static int canon_named(canon_t *c, json_t *node, const char *type, const char *ns)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *own_ns = json_string_value(json_object_get(node, "namespace"));
    char *full, *child_ns;
    int rc = 0;

    if (!name)
        return prime_error_set(c->err, PRIME_ERR_SCHEMA, NULL, "a %s schema has no \"name\"", type);
    if (!(full = full_name(name, own_ns, ns)))
        return prime_error_set(c->err, PRIME_ERR_NOMEM, NULL, "out of memory");
    if (json_object_get(c->seen, full)) {
        put_quoted(c, full);
        free(full);
        return 0;
    }
    json_object_set_new(c->seen, full, json_true());

    /* [ORDER]: name, type, fields, symbols, items, values, size. */
    prime_buf_puts(&c->out, "{\"name\":");
    put_quoted(c, full);
    prime_buf_puts(&c->out, ",\"type\":");
    put_quoted(c, type);

    child_ns = strdup(full);
    if (!child_ns) {
        free(full);
        return prime_error_set(c->err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    {
        char *dot = strrchr(child_ns, '.');
        if (dot)
            *dot = '\0';
        else
            child_ns[0] = '\0';
    }

    if (!strcmp(type, "record") || !strcmp(type, "error")) {
        json_t *fields = json_object_get(node, "fields");
        size_t i;
        json_t *f;

        if (!json_is_array(fields)) {
            rc = prime_error_set(c->err, PRIME_ERR_SCHEMA, name, "record has no \"fields\" array");
            goto out;
        }
        prime_buf_puts(&c->out, ",\"fields\":[");
        json_array_foreach(fields, i, f) {
            const char *fname = json_string_value(json_object_get(f, "name"));
            json_t *ftype = json_object_get(f, "type");
            if (!fname || !ftype) {
                rc = prime_error_set(c->err, PRIME_ERR_SCHEMA, name,
                                     "field %zu needs a \"name\" and a \"type\"", i);
                goto out;
            }
            if (i)
                prime_buf_putc(&c->out, ',');
            prime_buf_puts(&c->out, "{\"name\":");
            put_quoted(c, fname);
            prime_buf_puts(&c->out, ",\"type\":");
            if ((rc = canon_node(c, ftype, child_ns)))
                goto out;
            prime_buf_putc(&c->out, '}');
        }
        prime_buf_putc(&c->out, ']');
    } else if (!strcmp(type, "enum")) {
        json_t *symbols = json_object_get(node, "symbols");
        size_t i;
        json_t *s;

        if (!json_is_array(symbols)) {
            rc = prime_error_set(c->err, PRIME_ERR_SCHEMA, name, "enum has no \"symbols\" array");
            goto out;
        }
        prime_buf_puts(&c->out, ",\"symbols\":[");
        json_array_foreach(symbols, i, s) {
            if (!json_is_string(s)) {
                rc = prime_error_set(c->err, PRIME_ERR_SCHEMA, name, "enum symbol %zu is not a string", i);
                goto out;
            }
            if (i)
                prime_buf_putc(&c->out, ',');
            put_quoted(c, json_string_value(s));
        }
        prime_buf_putc(&c->out, ']');
    } else { /* fixed */
        json_t *size = json_object_get(node, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0) {
            rc = prime_error_set(c->err, PRIME_ERR_SCHEMA, name, "fixed needs a non-negative integer \"size\"");
            goto out;
        }
        /* [INTEGERS]: no leading zeros, which %lld never writes. */
        prime_buf_printf(&c->out, ",\"size\":%lld", (long long)json_integer_value(size));
    }
    prime_buf_putc(&c->out, '}');
out:
    free(child_ns);
    free(full);
    return rc;
}

static int canon_node(canon_t *c, json_t *node, const char *ns)
{
    if (json_is_string(node)) {
        const char *s = json_string_value(node);
        char *full;

        if (is_primitive(s)) {
            put_quoted(c, s);
            return 0;
        }
        /* A reference to a named type defined earlier. */
        if (!(full = full_name(s, NULL, ns)))
            return prime_error_set(c->err, PRIME_ERR_NOMEM, NULL, "out of memory");
        put_quoted(c, full);
        free(full);
        return 0;
    }
    if (json_is_array(node)) {
        size_t i;
        json_t *branch;
        int rc;

        prime_buf_putc(&c->out, '[');
        json_array_foreach(node, i, branch) {
            if (i)
                prime_buf_putc(&c->out, ',');
            if ((rc = canon_node(c, branch, ns)))
                return rc;
        }
        prime_buf_putc(&c->out, ']');
        return 0;
    }
    if (json_is_object(node)) {
        json_t *type = json_object_get(node, "type");
        const char *t;
        int rc;

        if (!type)
            return prime_error_set(c->err, PRIME_ERR_SCHEMA, NULL, "a schema object has no \"type\"");
        if (!json_is_string(type))   /* {"type": {...}} or {"type": [...]} */
            return canon_node(c, type, ns);
        t = json_string_value(type);
        /* [PRIMITIVES] and [STRIP]: {"type":"long","logicalType":...} is "long". */
        if (is_primitive(t)) {
            put_quoted(c, t);
            return 0;
        }
        if (!strcmp(t, "record") || !strcmp(t, "error") || !strcmp(t, "enum") || !strcmp(t, "fixed"))
            return canon_named(c, node, t, ns);
        if (!strcmp(t, "array") || !strcmp(t, "map")) {
            const char *key = t[0] == 'a' ? "items" : "values";
            json_t *inner = json_object_get(node, key);
            if (!inner)
                return prime_error_set(c->err, PRIME_ERR_SCHEMA, NULL, "%s has no \"%s\"", t, key);
            prime_buf_printf(&c->out, "{\"type\":\"%s\",\"%s\":", t, key);
            if ((rc = canon_node(c, inner, ns)))
                return rc;
            prime_buf_putc(&c->out, '}');
            return 0;
        }
        return canon_node(c, type, ns);  /* a named type referenced as {"type":"x.Y"} */
    }
    return prime_error_set(c->err, PRIME_ERR_SCHEMA, NULL,
                           "a schema must be a string, an array or an object");
}

char *prime_avro_canonical_form(const char *schema_json, size_t len, prime_error_t *err)
{
    json_error_t jerr;
    json_t *root;
    canon_t c;
    char *out = NULL;

    root = json_loadb(schema_json, len, JSON_DECODE_ANY, &jerr);
    if (!root) {
        prime_error_set(err, PRIME_ERR_JSON, NULL, "schema JSON, line %d column %d: %s",
                        jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    prime_buf_init(&c.out, 0);
    c.seen = json_object();
    c.err = err;
    if (canon_node(&c, root, "") == 0) {
        out = prime_buf_steal(&c.out, NULL);
        if (!out)
            prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    prime_buf_free(&c.out);
    json_decref(c.seen);
    json_decref(root);
    return out;
}
