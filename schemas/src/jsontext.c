/* JSON text as PostgreSQL's jsonb takes it.
 *
 * cJSON checks the structure of a document, but it lets through what jsonb
 * refuses and changes what it keeps: it reads numbers as doubles (15 to 17
 * significant digits, 1e400 becomes infinity and prints as null), cuts
 * strings and member names at \u0000 (and reads "\uZZZZ" as one), and takes
 * leading zeros ("01"), "1." and "-.5", raw control characters in strings
 * and any byte up to 0x20 as white space. So client JSON is kept as the text
 * the client wrote, and this scanner, run once over text cJSON has accepted,
 * refuses what jsonb would refuse and finds where each top-level member's
 * value lies in the text. It is not a parser: cJSON has already checked the
 * grammar, so the scanner only follows tokens and the nesting depth, and it
 * refuses anything unexpected rather than trusting it. */
#include "schemas_int.h"
#include "prime/jsontext.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The levels of nesting an error path names; deeper ones are cut. */
#define PATH_LEVELS 16
/* PostgreSQL's numeric (and so jsonb's numbers): at most 131072 digits
 * before the decimal point (weight < 2^15 base-10000 digits), 16383 after
 * it, and an exponent under INT_MAX/2 (numeric.c, make_result() and
 * set_var_from_str()), checked against PostgreSQL 15. */
#define NUMERIC_MAX_INT_DIGITS 131072L
#define NUMERIC_MAX_SCALE 16383L
#define NUMERIC_MAX_EXPONENT (INT_MAX / 2)

typedef struct level {
    bool object;
    bool want_key;   /* object: the next string is a member name */
    const char *key; /* object: the current member's name, as written */
    size_t key_len;
    size_t index;    /* array: the current item */
} level_t;

typedef struct scan {
    const char *text;
    size_t len, pos;
    const json_scan_opts_t *opts;
    size_t depth;                /* containers open around pos */
    level_t level[PATH_LEVELS + 1]; /* level[d]: the container at depth d (1-based) */
    size_t member_start;         /* of the top-level member value being read */
    size_t nmembers;
    size_t member_expansion, expansion; /* see json_span_t */
    prime_error_t *err;
} scan_t;

/* Appends s (n bytes) to buf if it fits whole, else "..." and false. */
static bool path_add(char *buf, size_t size, const char *s, size_t n)
{
    size_t used = strlen(buf);
    if (used + n + 4 > size) {
        if (used + 4 <= size)
            memcpy(buf + used, "...", 4);
        return false;
    }
    memcpy(buf + used, s, n);
    buf[used + n] = '\0';
    return true;
}

/* The path of the value at the scan position: the document's name, then
 * ".member" and "[index]" down to the innermost container whose current
 * member is known. A member name is shown as written, cut to 40 bytes and
 * to whole UTF-8 characters (names are not yet checked for valid UTF-8:
 * an invalid one is shown up to its first bad byte). */
static void scan_path(const scan_t *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s->opts->path ? s->opts->path : "");
    for (size_t d = 1; d <= s->depth && d <= PATH_LEVELS; d++) {
        const level_t *l = &s->level[d];
        char item[48];
        size_t n;

        if (l->object) {
            if (l->want_key || !l->key)
                return;
            n = l->key_len > 40 ? 40 : l->key_len;
            while (n > 0 && !utf8_valid(l->key, n))
                n--;
            if (buf[0] && !path_add(buf, size, ".", 1))
                return;
            if (!path_add(buf, size, l->key, n) || (n < l->key_len && !path_add(buf, size, "...", 3)))
                return;
        } else {
            snprintf(item, sizeof(item), "[%zu]", l->index);
            if (!path_add(buf, size, item, strlen(item)))
                return;
        }
    }
    if (s->depth > PATH_LEVELS)
        path_add(buf, size, "...", 3);
}

/* Sets the error at the scan position. A field's path when one is known,
 * else the document's JSON is at fault. */
static prime_errcode_t refuse(const scan_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static prime_errcode_t refuse(const scan_t *s, const char *fmt, ...)
{
    char path[sizeof(s->err->field)], message[sizeof(s->err->message)];
    va_list ap;

    if (!s->err)
        return PRIME_ERR_INVALID;
    scan_path(s, path, sizeof(path));
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    return prime_error_set(s->err, path[0] ? PRIME_ERR_INVALID : PRIME_ERR_JSON, path, "%s", message);
}

/* A value of the container at the current depth begins or ends at pos. */
static void value_begins(scan_t *s, size_t pos)
{
    if (s->depth == 1 && s->opts->members) {
        s->member_start = pos;
        s->member_expansion = 0;
    }
}

static void value_ends(scan_t *s, size_t end)
{
    if (s->depth == 1 && s->opts->members && s->nmembers < s->opts->nmembers) {
        s->opts->members[s->nmembers].start = s->member_start;
        s->opts->members[s->nmembers].len = end - s->member_start;
        s->opts->members[s->nmembers].expansion = s->member_expansion;
        s->nmembers++;
    }
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The string at pos (its opening quote); moves pos past the closing one. */
static prime_errcode_t scan_string(scan_t *s)
{
    const char *t = s->text;
    size_t i = s->pos + 1;

    for (;;) {
        unsigned char c;
        if (i >= s->len)
            return refuse(s, "unterminated string");
        c = (unsigned char)t[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return refuse(s, "a control character in a string must be written as an escape (\\u%04x)", c);
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= s->len)
            return refuse(s, "unterminated string");
        if (t[i + 1] == 'u') {
            int code = 0;
            for (int k = 2; k < 6; k++) {
                int h = i + (size_t)k < s->len ? hex(t[i + (size_t)k]) : -1;
                if (h < 0)
                    return refuse(s, "invalid escape: \\u takes four hex digits");
                code = code * 16 + h;
            }
            if (code == 0)
                return refuse(s, "\\u0000 (NUL) is refused: PostgreSQL's jsonb and text cannot hold it");
            i += 6;
        } else if (strchr("\"\\/bfnrt", t[i + 1]) && t[i + 1]) {
            i += 2;
        } else {
            return refuse(s, "invalid escape in a string");
        }
    }
    s->pos = i + 1;
    return PRIME_OK;
}

/* Counts what PostgreSQL adds when it prints a number of n characters
 * whose first significant digit stands for 10^p (p < 0: none before the
 * point) with scale digits after it: numeric_out writes every digit, so
 * "1e131071" (8 bytes) prints as 131,072. A small document could
 * otherwise become gigabytes on every read (past PostgreSQL's 1 GB limit
 * for a value: an unreadable row, a failing pg_dump). */
static void printed_length(scan_t *s, bool negative, long p, long scale, size_t n)
{
    size_t printed = (negative ? 1u : 0u) + (size_t)(p >= 0 ? p + 1 : 1) + (size_t)(scale > 0 ? scale + 1 : 0);
    if (printed > n) {
        s->member_expansion += printed - n;
        s->expansion += printed - n;
    }
}

/* At most 24 bytes of a token, for "%.*s%s". */
#define EXCERPT(p, n) (int)((n) > 24 ? 24 : (n)), (p), (n) > 24 ? "..." : ""

/* The number at pos, to its last character: JSON's grammar exactly
 * (-?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?) and numeric's range. The token
 * extends over the characters cJSON hands to strtod. */
static prime_errcode_t scan_number(scan_t *s)
{
    const char *t = s->text, *p, *end;
    size_t start = s->pos, n;
    long int_digits = 0, frac_digits = 0, first_nonzero_frac = 0, exponent = 0;
    bool nonzero_int = false, exp_negative = false;

    for (n = start; n < s->len && strchr("0123456789+-.eE", t[n]) && t[n]; n++)
        ;
    p = t + start;
    end = t + n;
    s->pos = n;
    n -= start;
    if (p < end && *p == '-')
        p++;
    if (p == end || *p < '0' || *p > '9')
        return refuse(s, "number '%.*s%s' needs a digit before any '.' or exponent", EXCERPT(t + start, n));
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return refuse(s, "number '%.*s%s' has a leading zero, which JSON does not allow", EXCERPT(t + start, n));
    } else {
        nonzero_int = true;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            int_digits++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || *p < '0' || *p > '9')
            return refuse(s, "number '%.*s%s' needs a digit after the '.'", EXCERPT(t + start, n));
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            frac_digits++;
            if (*p != '0' && !first_nonzero_frac)
                first_nonzero_frac = frac_digits;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            exp_negative = *p++ == '-';
        if (p == end || *p < '0' || *p > '9')
            return refuse(s, "number '%.*s%s' needs digits in its exponent", EXCERPT(t + start, n));
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (exponent <= NUMERIC_MAX_EXPONENT) /* saturates: past this it is refused anyway */
                exponent = exponent * 10 + (*p - '0');
        if (exp_negative)
            exponent = -exponent;
    }
    if (p != end)
        return refuse(s, "'%.*s%s' is not a JSON number", EXCERPT(t + start, n));
    /* Refused by numeric_in: the exponent itself (even of a zero), digits
     * after the point, then the place of the first significant digit. */
    if (exponent >= NUMERIC_MAX_EXPONENT || exponent <= -NUMERIC_MAX_EXPONENT ||
        frac_digits - exponent > NUMERIC_MAX_SCALE ||
        (nonzero_int && int_digits + exponent > NUMERIC_MAX_INT_DIGITS) ||
        (!nonzero_int && first_nonzero_frac && exponent - first_nonzero_frac + 1 > NUMERIC_MAX_INT_DIGITS))
        return refuse(s,
                      "number '%.*s%s' is out of PostgreSQL's numeric range (up to 131072 digits before the "
                      "decimal point and 16383 after it)",
                      EXCERPT(t + start, n));
    printed_length(s, t[start] == '-', nonzero_int ? int_digits - 1 + exponent
                                                   : first_nonzero_frac ? exponent - first_nonzero_frac : -1,
                   frac_digits - exponent, n);
    if (s->opts->number)
        s->opts->number(s->opts->ctx, t + start, n);
    return PRIME_OK;
}

prime_errcode_t json_scan(const char *text, size_t len, const json_scan_opts_t *opts, prime_error_t *err)
{
    scan_t s = {.text = text, .len = len, .opts = opts, .err = err};
    prime_errcode_t rc;

    if (opts->bom && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        s.pos = 3; /* cJSON skips it too */
    while (s.pos < len) {
        char c = text[s.pos];
        level_t *l = s.depth && s.depth <= PATH_LEVELS ? &s.level[s.depth] : NULL;
        size_t start = s.pos;

        switch (c) {
        case ' ': case '\t': case '\n': case '\r':
            s.pos++;
            break;
        case '{':
        case '[':
            value_begins(&s, start);
            if (++s.depth > CJSON_NESTING_LIMIT)
                return refuse(&s, "nested deeper than %d levels", CJSON_NESTING_LIMIT);
            if (s.depth <= PATH_LEVELS)
                s.level[s.depth] = (level_t){.object = c == '{', .want_key = c == '{'};
            s.pos++;
            break;
        case '}':
        case ']':
            if (!s.depth)
                return refuse(&s, "unexpected '%c'", c);
            s.depth--;
            s.pos++;
            value_ends(&s, s.pos);
            break;
        case ':':
            if (l)
                l->want_key = false;
            s.pos++;
            break;
        case ',':
            if (l && l->object)
                l->want_key = true;
            else if (l)
                l->index++;
            s.pos++;
            break;
        case '"':
            if (!l || !l->want_key)
                value_begins(&s, start);
            if ((rc = scan_string(&s)))
                return rc;
            if (l && l->want_key) {
                l->key = text + start + 1;
                l->key_len = s.pos - start - 2;
            } else {
                value_ends(&s, s.pos);
            }
            break;
        case 't':
        case 'f':
        case 'n': {
            size_t n = c == 'f' ? 5 : 4;
            if (len - start < n || memcmp(text + start, c == 't' ? "true" : c == 'f' ? "false" : "null", n))
                return refuse(&s, "unexpected '%c'", c);
            value_begins(&s, start);
            s.pos += n;
            value_ends(&s, s.pos);
            break;
        }
        default:
            if (c == '-' || (c >= '0' && c <= '9')) {
                value_begins(&s, start);
                if ((rc = scan_number(&s)))
                    return rc;
                value_ends(&s, s.pos);
            } else if ((unsigned char)c < 0x20) {
                return refuse(&s, "control character 0x%02x outside a string (JSON allows only space, tab, CR "
                                  "and LF there)", (unsigned char)c);
            } else {
                return refuse(&s, "unexpected byte 0x%02x", (unsigned char)c);
            }
        }
    }
    if (s.depth)
        return refuse(&s, "unexpected end of JSON");
    if (opts->expansion)
        *opts->expansion = s.expansion;
    return PRIME_OK;
}

prime_errcode_t json_too_large(const char *path, size_t len, size_t expansion, size_t limit, prime_error_t *err)
{
    return prime_error_set(err, PRIME_ERR_TOO_LARGE, path,
                           "JSON document of %zu bytes is %zu bytes as PostgreSQL prints it (every digit of its "
                           "numbers), over the %zu-byte limit (max_json_bytes)",
                           len, len + expansion, limit);
}

/* The numbers of a document, in the order they appear. */
typedef struct numbers {
    const char *text;
    json_span_t *spans;
    size_t n, cap, next;
    bool nomem;
} numbers_t;

static void add_number(void *ctx, const char *s, size_t len)
{
    numbers_t *nums = ctx;
    if (nums->n == nums->cap) {
        size_t cap = nums->cap ? nums->cap * 2 : 16;
        json_span_t *grown = nums->nomem ? NULL : realloc(nums->spans, cap * sizeof(*grown));
        if (!grown) {
            nums->nomem = true;
            return;
        }
        nums->spans = grown;
        nums->cap = cap;
    }
    nums->spans[nums->n++] = (json_span_t){.start = (size_t)(s - nums->text), .len = len};
}

/* Makes each number of v a raw item holding its text. cJSON keeps members
 * and items in document order, so a walk in pre-order meets the numbers in
 * the order the scanner found them. */
static bool numbers_as_text(cJSON *v, numbers_t *nums)
{
    for (; v; v = v->next) {
        if (cJSON_IsNumber(v)) {
            const json_span_t *sp;
            char *raw;
            if (nums->next >= nums->n || !(raw = cJSON_malloc(nums->spans[nums->next].len + 1)))
                return false;
            sp = &nums->spans[nums->next++];
            memcpy(raw, nums->text + sp->start, sp->len);
            raw[sp->len] = '\0';
            v->type = cJSON_Raw;
            v->valuestring = raw; /* cJSON_Delete() frees it */
        } else if (v->child && !numbers_as_text(v->child, nums)) {
            return false;
        }
    }
    return true;
}

cJSON *prime_json_parse(const char *text)
{
    numbers_t nums = {.text = text};
    json_scan_opts_t opts = {.path = "", .number = add_number, .ctx = &nums};
    size_t len = text ? strlen(text) : 0, column;
    cJSON *doc = text ? json_parse_exact(text, len, &column) : NULL;

    if (doc && (json_scan(text, len, &opts, NULL) || nums.nomem || !numbers_as_text(doc, &nums) ||
                nums.next != nums.n)) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    free(nums.spans);
    return doc;
}
