/* The value rules of the event schemas. Each rule's message says what was
 * expected, so a client developer can fix the event from the error alone. */
#include "schemas_int.h"
#include "prime/uuid.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

/* 2000-01-01 .. 2100-01-01: anything else is a client clock or unit bug. */
#define TIME_MIN 946684800000000LL
#define TIME_MAX 4102444800000000LL

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned c, need;
        uint32_t cp;
        uint64_t word;
        /* Eight ASCII bytes without a NUL at a time: the common case. */
        while (end - p >= 8) {
            memcpy(&word, p, 8);
            if ((word & 0x8080808080808080ULL) || ((word - 0x0101010101010101ULL) & ~word & 0x8080808080808080ULL))
                break;
            p += 8;
        }
        if (p == end)
            break;
        c = *p;
        if (c == 0)
            return false; /* PostgreSQL text cannot hold NUL */
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07;
        else
            return false;
        if ((size_t)(end - p) <= need)
            return false;
        for (unsigned i = 1; i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += need + 1;
    }
    return true;
}

static bool is_email(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    const char *dot;

    if (!at || at == s || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return false;
    for (size_t i = 0; i < len; i++)
        if (isspace((unsigned char)s[i]) || iscntrl((unsigned char)s[i]))
            return false;
    dot = memchr(at + 1, '.', len - (size_t)(at - s) - 1);
    return dot && dot > at + 1 && dot < s + len - 1 && s[len - 1] != '.';
}

static bool all_chars(const char *s, size_t len, const char *extra)
{
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
            return false;
    return true;
}

/* A-G, an optional sharp or flat, an optional minor/major mark: "C#m",
 * "F", "Bbmaj", "A minor". */
static bool is_musical_key(const char *s, size_t len)
{
    static const char *const suffixes[] = {"", "m", "min", "maj", " minor", " major", NULL};
    size_t i = 0;

    if (len == 0 || s[0] < 'A' || s[0] > 'G')
        return false;
    i = 1;
    if (i < len && (s[i] == '#' || s[i] == 'b'))
        i++;
    for (int k = 0; suffixes[k]; k++)
        if (len - i == strlen(suffixes[k]) && !memcmp(s + i, suffixes[k], len - i))
            return true;
    return false;
}

/* N/M with N in 1..64 and M a power of two in 1..64. */
static bool is_time_signature(const char *s, size_t len)
{
    char buf[16], *end;
    long n, m;

    if (len == 0 || len >= sizeof(buf) || !isdigit((unsigned char)s[0]))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    n = strtol(buf, &end, 10);
    if (*end != '/' || !isdigit((unsigned char)end[1]))
        return false;
    m = strtol(end + 1, &end, 10);
    return !*end && n >= 1 && n <= 64 && m >= 1 && m <= 64 && (m & (m - 1)) == 0;
}

static bool starts(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && !memcmp(s, prefix, n);
}

/* Password and token hashes in the formats a studio back end writes:
 * PHC strings ($argon2id$..., $scrypt$..., $pbkdf2-sha256$...), bcrypt
 * ($2a$/$2b$/$2y$ and 60 characters), or hex SHA-256/SHA-512, optionally
 * prefixed "sha256:"/"sha512:". Anything else is taken as plaintext. */
static bool is_secret_hash(const char *s, size_t len)
{
    if (starts(s, len, "$argon2id$") || starts(s, len, "$argon2i$") || starts(s, len, "$argon2d$") ||
        starts(s, len, "$scrypt$") || starts(s, len, "$pbkdf2-sha256$") || starts(s, len, "$pbkdf2-sha512$"))
        return len >= 30 && all_chars(s, len, "$=,+/.-_");
    if (starts(s, len, "$2a$") || starts(s, len, "$2b$") || starts(s, len, "$2y$"))
        return len == 60 && all_chars(s, len, "$./");
    if (starts(s, len, "sha256:") || starts(s, len, "sha512:"))
        s += 7, len -= 7;
    if (len != 64 && len != 128)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_inet(const char *s, size_t len)
{
    char buf[64], *slash;
    unsigned char addr[16];
    long prefix = -1;
    int family;

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if ((slash = strchr(buf, '/'))) {
        char *end;
        *slash = '\0';
        if (!isdigit((unsigned char)slash[1]))
            return false;
        prefix = strtol(slash + 1, &end, 10);
        if (*end)
            return false;
    }
    if (inet_pton(AF_INET, buf, addr) == 1)
        family = 4;
    else if (inet_pton(AF_INET6, buf, addr) == 1)
        family = 6;
    else
        return false;
    return prefix < 0 || prefix <= (family == 4 ? 32 : 128);
}

/* Relative, inside the storage root: no leading '/', no '..' component,
 * no empty component, no backslash or control character. */
static bool is_storage_path(const char *s, size_t len)
{
    size_t start = 0;

    if (len == 0 || s[0] == '/')
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && (s[i] == '\\' || iscntrl((unsigned char)s[i])))
            return false;
        if (i == len || s[i] == '/') {
            size_t n = i - start;
            if (n == 0 || (n == 2 && s[start] == '.' && s[start + 1] == '.') || (n == 1 && s[start] == '.'))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool is_mime_type(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    return slash && slash > s && slash < s + len - 1 && all_chars(s, len, "/.+-_;= ");
}

static bool in_list(const char *s, size_t len, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && !memcmp(s, list[i], len))
            return true;
    return false;
}

static const char *const audio_formats[] = {"wav", "aiff", "flac", "ogg", "mp3", "opus", "m4a",
                                            "aac", "caf", "w64", "rf64", NULL};

static const char *kind_noun(const field_desc_t *f)
{
    return f->kind == KIND_STRING_ARRAY ? "each item" : "the value";
}

static prime_errcode_t check_json(const prime_event_t *ev, const field_desc_t *f, const char *path,
                                  const char *s, size_t len, prime_error_t *err)
{
    size_t limit = ev->type->reg->limits.max_json_bytes, column, expansion = 0;
    const char *dup;
    cJSON *doc;
    prime_errcode_t rc = PRIME_OK;

    if (len > limit)
        return prime_error_set(err, PRIME_ERR_TOO_LARGE, path,
                               "JSON document of %zu bytes is over the %zu-byte limit (max_json_bytes)", len,
                               limit);
    if (!(doc = json_parse_exact(s, len, &column))) {
        if (json_too_deep(s, column < len ? column : len))
            return prime_error_set(err, PRIME_ERR_INVALID, path,
                                   "expected JSON text, nested deeper than %d levels of arrays and objects at column %zu",
                                   CJSON_NESTING_LIMIT, column);
        return prime_error_set(err, PRIME_ERR_INVALID, path, "expected JSON text, parse error at column %zu", column);
    }
    if ((rc = json_scan(s, len, &(json_scan_opts_t){.path = path, .expansion = &expansion}, err)))
        ; /* what jsonb would refuse, named by its path in the document */
    else if (len + expansion > limit)
        rc = json_too_large(path, len, expansion, limit, err);
    else if ((dup = json_find_duplicate(doc)))
        rc = prime_error_set(err, PRIME_ERR_INVALID, path, "JSON object has a duplicate member '%s'", dup);
    else if (f->check == CHECK_JSON_OBJECT && !cJSON_IsObject(doc))
        rc = prime_error_set(err, PRIME_ERR_INVALID, path, "expected a JSON object");
    else if (f->check == CHECK_JSON_ARRAY && !cJSON_IsArray(doc))
        rc = prime_error_set(err, PRIME_ERR_INVALID, path, "expected a JSON array");
    cJSON_Delete(doc);
    return rc;
}

prime_errcode_t check_string(const prime_event_t *ev, const field_desc_t *f, const char *path, const char *s,
                             size_t len, prime_error_t *err)
{
    bool json = f->check == CHECK_JSON || f->check == CHECK_JSON_OBJECT || f->check == CHECK_JSON_ARRAY;

    if (!utf8_valid(s, len))
        return prime_error_set(err, PRIME_ERR_INVALID, path, "expected valid UTF-8 text without NUL bytes");
    if (!json && len > f->max_length)
        return prime_error_set(err, PRIME_ERR_TOO_LARGE, path, "%zu bytes, over the limit of %zu", len,
                               f->max_length);
    if (f->one_of) {
        size_t i;
        json_t *opt;
        char list[256] = "";
        json_array_foreach(f->one_of, i, opt) {
            if (json_string_length(opt) == len && !memcmp(json_string_value(opt), s, len))
                return PRIME_OK;
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                     json_string_value(opt));
        }
        return prime_error_set(err, PRIME_ERR_INVALID, path, "expected one of: %s", list);
    }
    switch (f->check) {
    case CHECK_NONE:
        if (len == 0)
            return prime_error_set(err, PRIME_ERR_INVALID, path, "%s must not be empty", kind_noun(f));
        return PRIME_OK;
    case CHECK_UUID:
        if (!prime_uuid_valid(s, len))
            return prime_error_set(err, PRIME_ERR_INVALID, path,
                                   "expected a UUID like 8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e");
        /* The nil UUID is the pipeline's "no one": the actor of what no
         * event caused, on the topics the pipeline writes itself (audit
         * records, snapshots). A client's user is never no one. */
        if (len == 36 && !memcmp(s, NIL_UUID, 36) &&
            (!strcmp(f->name, "actor_user_id") || !strcmp(f->name, "owner_user_id")) &&
            strcmp(ev->type->topic, "prime.audit") && strcmp(ev->type->topic, "prime.snapshots"))
            return prime_error_set(err, PRIME_ERR_INVALID, path,
                                   "the nil UUID is reserved (the pipeline's \"no one\"): expected a user's id");
        return PRIME_OK;
    case CHECK_EVENT_TYPE:
        return strlen(ev->type->name) == len && !memcmp(ev->type->name, s, len)
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path, "expected '%s' for this schema", ev->type->name);
    case CHECK_EMAIL:
        return is_email(s, len) ? PRIME_OK
                                : prime_error_set(err, PRIME_ERR_INVALID, path, "expected an email address like name@example.com");
    case CHECK_USERNAME:
        return len >= 3 && len <= 32 && all_chars(s, len, "_.-")
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path,
                                     "expected 3 to 32 letters, digits, '_', '.' or '-'");
    case CHECK_URL:
        return (starts(s, len, "https://") || starts(s, len, "http://")) && !memchr(s, ' ', len)
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path, "expected an http:// or https:// URL");
    case CHECK_MUSICAL_KEY:
        return is_musical_key(s, len) ? PRIME_OK
                                      : prime_error_set(err, PRIME_ERR_INVALID, path,
                                                        "expected a musical key like C, F#, Bb, C#m, Ebmaj or A minor");
    case CHECK_TIME_SIGNATURE:
        return is_time_signature(s, len) ? PRIME_OK
                                         : prime_error_set(err, PRIME_ERR_INVALID, path,
                                                           "expected a time signature N/M like 4/4, 7/8 (M a power of two)");
    case CHECK_JSON:
    case CHECK_JSON_OBJECT:
    case CHECK_JSON_ARRAY:
        return check_json(ev, f, path, s, len, err);
    case CHECK_SECRET_HASH:
        return is_secret_hash(s, len)
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path,
                                     "expected a password or token hash (argon2, bcrypt, scrypt, pbkdf2 or hex "
                                     "SHA-256/512); this looks like plaintext, which must never be sent");
    case CHECK_INET:
        return is_inet(s, len) ? PRIME_OK
                               : prime_error_set(err, PRIME_ERR_INVALID, path, "expected an IPv4 or IPv6 address");
    case CHECK_STORAGE_PATH:
        return is_storage_path(s, len)
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path,
                                     "expected a relative path inside the storage root (no leading '/', no '..')");
    case CHECK_MIME_TYPE:
        return is_mime_type(s, len) ? PRIME_OK
                                    : prime_error_set(err, PRIME_ERR_INVALID, path, "expected a MIME type like audio/wav");
    case CHECK_AUDIO_FORMAT:
        return in_list(s, len, audio_formats)
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path,
                                     "expected an audio format: wav, aiff, flac, ogg, mp3, opus, m4a, aac, caf, w64 or rf64");
    case CHECK_CREDENTIAL_TYPE:
        return (len == 14 && !memcmp(s, "email_password", 14)) ||
                       (starts(s, len, "oauth_") && len > 6 && all_chars(s, len, "_"))
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path,
                                     "expected 'email_password' or 'oauth_<provider>'");
    default:
        return prime_error_set(err, PRIME_ERR_SCHEMA, path, "rule does not apply to text");
    }
}

static const int sample_rates[] = {8000,  11025, 16000,  22050,  24000,  32000,  44100,  48000,
                                   88200, 96000, 176400, 192000, 352800, 384000, 705600, 768000, 0};

/* The range a numeric rule accepts; a rule with a set (sample rates, bit
 * depths) by the set's ends. Open sides are -/+HUGE_VAL. */
static void rule_range(field_check_t check, double *lo, double *hi)
{
    *lo = -HUGE_VAL, *hi = HUGE_VAL;
    switch (check) {
    case CHECK_BPM: *lo = 20, *hi = 999; break;
    case CHECK_LUFS: *lo = -70, *hi = 5; break;
    case CHECK_SAMPLE_RATE: *lo = 8000, *hi = 768000; break;
    case CHECK_BIT_DEPTH: *lo = 8, *hi = 64; break;
    case CHECK_CHANNELS: *lo = 1, *hi = 64; break;
    case CHECK_NONNEG: *lo = 0; break;
    case CHECK_POSITIVE: *lo = 1; break;
    case CHECK_CONFIDENCE: *lo = 0, *hi = 1; break;
    case CHECK_MEASURED_LUFS: *lo = -70, *hi = 999.99; break;
    case CHECK_MEASURED_SAMPLE_RATE: *lo = 1000, *hi = 768000; break;
    case CHECK_MEASURED_DR: *lo = 0, *hi = 999.99; break;
    default: break;
    }
}

static prime_errcode_t check_rule(const field_desc_t *f, const char *path, double v, prime_error_t *err)
{
    double lo, hi;

    rule_range(f->check, &lo, &hi);
    switch (f->check) {
    case CHECK_BPM:
        return v >= lo && v <= hi ? PRIME_OK
                                  : prime_error_set(err, PRIME_ERR_INVALID, path, "expected a BPM from %g to %g, got %g", lo, hi, v);
    case CHECK_LUFS:
        return v >= lo && v <= hi ? PRIME_OK
                                  : prime_error_set(err, PRIME_ERR_INVALID, path, "expected loudness from %g to +%g LUFS, got %g", lo, hi, v);
    /* What the analyzer measures, which may be anything a file holds, up to
     * what the column it lands in holds (DECIMAL(5,2): below 1000). */
    case CHECK_MEASURED_LUFS:
        return v >= lo && v <= hi ? PRIME_OK
                                  : prime_error_set(err, PRIME_ERR_INVALID, path,
                                                    "expected a measured loudness from %g (the absolute gate) to "
                                                    "%g LUFS (DECIMAL(5,2)), got %g", lo, hi, v);
    case CHECK_MEASURED_SAMPLE_RATE:
        return v >= lo && v <= hi && v == floor(v)
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path,
                                     "expected a measured sample rate of %g to %g Hz, got %g", lo, hi, v);
    case CHECK_MEASURED_DR:
        return v >= lo && v <= hi ? PRIME_OK
                                  : prime_error_set(err, PRIME_ERR_INVALID, path,
                                                    "expected a DR figure from %g to %g (DECIMAL(5,2)), got %g", lo, hi, v);
    case CHECK_SAMPLE_RATE:
        for (int i = 0; sample_rates[i]; i++)
            if (v == sample_rates[i])
                return PRIME_OK;
        return prime_error_set(err, PRIME_ERR_INVALID, path,
                               "expected a sample rate of %g to %g Hz in the standard families "
                               "(44100, 48000, 96000, ...), got %g", lo, hi, v);
    case CHECK_BIT_DEPTH:
        return v == 8 || v == 16 || v == 24 || v == 32 || v == 64
                   ? PRIME_OK
                   : prime_error_set(err, PRIME_ERR_INVALID, path, "expected a bit depth of 8, 16, 24, 32 or 64, got %g", v);
    case CHECK_CHANNELS:
        return v >= lo && v <= hi ? PRIME_OK
                                  : prime_error_set(err, PRIME_ERR_INVALID, path, "expected %g to %g channels, got %g", lo, hi, v);
    case CHECK_NONNEG:
        return v >= lo ? PRIME_OK : prime_error_set(err, PRIME_ERR_INVALID, path, "expected a value >= %g, got %g", lo, v);
    case CHECK_POSITIVE:
        return v >= lo ? PRIME_OK : prime_error_set(err, PRIME_ERR_INVALID, path, "expected a value >= %g, got %g", lo, v);
    case CHECK_CONFIDENCE:
        return v >= lo && v <= hi ? PRIME_OK
                                  : prime_error_set(err, PRIME_ERR_INVALID, path, "expected a confidence from %g to %g, got %g", lo, hi, v);
    case CHECK_NONE:
        return PRIME_OK;
    default:
        return prime_error_set(err, PRIME_ERR_SCHEMA, path, "rule does not apply to numbers");
    }
}

static prime_errcode_t check_number(const field_desc_t *f, const char *path, double v, prime_error_t *err)
{
    prime_errcode_t rc;

    if (isnan(v) || isinf(v))
        return prime_error_set(err, PRIME_ERR_INVALID, path, "expected a finite number");
    if ((rc = check_rule(f, path, v, err)))
        return rc;
    /* The column's bound (prime.max): past it PostgreSQL would refuse the
     * value (or round it over its precision) long after it was accepted. */
    if (f->has_max && v > f->max)
        return prime_error_set(err, PRIME_ERR_INVALID, path, "expected at most %.15g, the most its column %s holds, got %.15g",
                               f->max, f->column ? f->column : "", v);
    return PRIME_OK;
}

bool prime_event_type_field_range(const prime_event_type_t *t, size_t i, double *min, double *max)
{
    const field_desc_t *f = i < t->nfields ? &t->fields[i] : NULL;
    double lo, hi;

    if (!f || f->timestamp || (f->kind != KIND_INT && f->kind != KIND_LONG && f->kind != KIND_DOUBLE))
        return false;
    rule_range(f->check, &lo, &hi);
    if (f->kind == KIND_INT)
        lo = fmax(lo, INT32_MIN), hi = fmin(hi, INT32_MAX);
    if (f->kind == KIND_LONG) /* as doubles: -2^63 and 2^63 */
        lo = fmax(lo, (double)INT64_MIN), hi = fmin(hi, -(double)INT64_MIN);
    if (f->has_max)
        hi = fmin(hi, f->max);
    *min = lo;
    *max = hi;
    return true;
}

size_t prime_event_type_field_max_length(const prime_event_type_t *t, size_t i)
{
    const field_desc_t *f = i < t->nfields ? &t->fields[i] : NULL;

    if (!f || (f->kind != KIND_STRING && f->kind != KIND_STRING_ARRAY))
        return 0;
    if (f->check == CHECK_JSON || f->check == CHECK_JSON_OBJECT || f->check == CHECK_JSON_ARRAY)
        return t->reg->limits.max_json_bytes;
    return f->max_length;
}

static prime_errcode_t validate_field(const prime_event_t *ev, size_t i, prime_error_t *err)
{
    const field_desc_t *f = &ev->type->fields[i];
    avro_value_t v, item;
    bool is_null;
    const char *s = NULL;
    size_t size = 0, n = 0;
    int32_t i32 = 0;
    int64_t i64 = 0;
    double d = 0;
    char path[160];
    prime_errcode_t rc;

    if (event_field(ev, i, &v, &is_null))
        return prime_error_set(err, PRIME_ERR_INVALID, f->name, "value missing");
    if (is_null) {
        if (i == 5 && ev->type->requires_device_id)
            return prime_error_set(err, PRIME_ERR_INVALID, f->name, "%s needs the device_id of the client",
                                   ev->type->name);
        return PRIME_OK;
    }
    switch (f->kind) {
    case KIND_STRING:
        avro_value_get_string(&v, &s, &size);
        if (ev->json_checked & (1ULL << i)) {
            /* Printed by us from a checked tree: the kind and members are
             * known good; the bytes (cJSON does not check UTF-8) and the
             * size limit are left. */
            size_t limit = ev->type->reg->limits.max_json_bytes;
            if (!utf8_valid(s, size - 1))
                return prime_error_set(err, PRIME_ERR_INVALID, f->name, "expected valid UTF-8 text without NUL bytes");
            if (size - 1 > limit)
                return prime_error_set(err, PRIME_ERR_TOO_LARGE, f->name,
                                       "JSON document of %zu bytes is over the %zu-byte limit (max_json_bytes)",
                                       size - 1, limit);
            return PRIME_OK;
        }
        return check_string(ev, f, f->name, s, size ? size - 1 : 0, err);
    case KIND_STRING_ARRAY:
        avro_value_get_size(&v, &n);
        if (n > f->max_items)
            return prime_error_set(err, PRIME_ERR_TOO_LARGE, f->name, "%zu items, over the limit of %zu", n,
                                   f->max_items);
        for (size_t k = 0; k < n; k++) {
            avro_value_get_by_index(&v, k, &item, NULL);
            avro_value_get_string(&item, &s, &size);
            snprintf(path, sizeof(path), "%s[%zu]", f->name, k);
            if ((rc = check_string(ev, f, path, s, size ? size - 1 : 0, err)))
                return rc;
        }
        return PRIME_OK;
    case KIND_INT:
        avro_value_get_int(&v, &i32);
        return check_number(f, f->name, i32, err);
    case KIND_LONG:
        avro_value_get_long(&v, &i64);
        if (f->timestamp && (i64 < TIME_MIN || i64 >= TIME_MAX))
            return prime_error_set(err, PRIME_ERR_INVALID, f->name,
                                   "expected a time between 2000 and 2100 in microseconds since the epoch, "
                                   "got %lld", (long long)i64);
        return check_number(f, f->name, (double)i64, err);
    case KIND_DOUBLE:
        avro_value_get_double(&v, &d);
        return check_number(f, f->name, d, err);
    case KIND_BOOLEAN:
        return PRIME_OK;
    }
    return PRIME_OK;
}

prime_errcode_t prime_event_validate(const prime_event_t *ev, prime_error_t *err)
{
    for (size_t i = 0; i < ev->type->nfields; i++) {
        prime_errcode_t rc = validate_field(ev, i, err);
        if (rc)
            return rc;
    }
    return PRIME_OK;
}
