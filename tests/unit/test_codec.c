/* The event codec: canonical form and fingerprints against the Avro
 * project's published vectors, round trips of every event type, every way a
 * message can be broken, and schema evolution. */
#define _GNU_SOURCE /* memmem */
#include "prime/embedded.h"
#include "prime/event.h"
#include "prime/fingerprint.h"
#include "prime/uuid.h"
#include "../support/prime_test.h"

#include <avro.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static prime_registry_t *reg;

static int suite_init(void)
{
    prime_error_t err;
    prime_error_clear(&err);
    reg = prime_registry_new(&err);
    if (!reg)
        fprintf(stderr, "registry: %s\n", err.message);
    return reg ? 0 : 1;
}

static int suite_cleanup(void)
{
    prime_registry_free(reg);
    return 0;
}

/* From the Avro project's share/test/data/schema-tests.txt: input schema,
 * its Parsing Canonical Form, and the signed 64-bit CRC-64-AVRO fingerprint
 * (0 where the file gives none). */
static const struct {
    const char *input, *canonical;
    long long fingerprint;
} spec_vectors[] = {
    {"\"null\"", "\"null\"", 7195948357588979594LL},
    {"{\"type\":\"null\"}", "\"null\"", 0},
    {"\"boolean\"", "\"boolean\"", -6970731678124411036LL},
    {"{\"type\":\"boolean\"}", "\"boolean\"", 0},
    {"\"int\"", "\"int\"", 8247732601305521295LL},
    {"{\"type\":\"int\"}", "\"int\"", 0},
    {"\"long\"", "\"long\"", -3434872931120570953LL},
    {"{\"type\":\"long\"}", "\"long\"", 0},
    {"\"float\"", "\"float\"", 5583340709985441680LL},
    {"{\"type\":\"float\"}", "\"float\"", 0},
    {"\"double\"", "\"double\"", -8181574048448539266LL},
    {"{\"type\":\"double\"}", "\"double\"", 0},
    {"\"bytes\"", "\"bytes\"", 5746618253357095269LL},
    {"{\"type\":\"bytes\"}", "\"bytes\"", 0},
    {"\"string\"", "\"string\"", -8142146995180207161LL},
    {"{\"type\":\"string\"}", "\"string\"", 0},
    {"[  ]", "[]", -1241056759729112623LL},
    {"[ \"int\"  ]", "[\"int\"]", -5232228896498058493LL},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 5392556393470105090LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}", "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}",
     -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 5916914534497305771LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", -4616218487480524110LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     7843277075252814651LL},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", \"default\":\"true\"},\n"
     "            {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":\"int\"}],\n"
     "  \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},{\"name\":\"f2\","
     "\"type\":\"int\"}]}",
     -4860222112080293046LL},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", -6342190197741309591LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", \"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}", -4448647247586288245LL},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     1756455273707447556LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", \"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", -3064184465700546786LL},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}", "{\"type\":\"array\",\"items\":\"null\"}",
     -589620603366471059LL},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}",
     -8732877298790414990LL},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\n"
     "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":[\"null\",\"int\","
     "\"long\",\"PigValue\"]}]}",
     -1759257747318642341LL},
};

static void test_spec_vectors(void)
{
    size_t n = sizeof(spec_vectors) / sizeof(spec_vectors[0]);
    for (size_t i = 0; i < n; i++) {
        prime_error_t err;
        char *pcf;
        prime_error_clear(&err);
        pcf = prime_avro_canonical_form(spec_vectors[i].input, strlen(spec_vectors[i].input), &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pcf);
        if (strcmp(pcf, spec_vectors[i].canonical))
            fprintf(stderr, "vector %zu: got %s want %s\n", i, pcf, spec_vectors[i].canonical);
        CU_ASSERT_STRING_EQUAL(pcf, spec_vectors[i].canonical);
        if (spec_vectors[i].fingerprint)
            CU_ASSERT_EQUAL((long long)prime_avro_crc64(pcf, strlen(pcf)), spec_vectors[i].fingerprint);
        free(pcf);
    }
    CU_ASSERT_EQUAL(n, 34);
}

static void test_logical_types_and_attributes_are_stripped(void)
{
    const char *a = "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"prime.topic\":\"t\",\"fields\":"
                    "[{\"name\":\"id\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"},\"prime.check\":\"uuid\"},"
                    "{\"name\":\"o\",\"type\":[\"null\",\"long\"],\"default\":null}]}";
    char *pcf = prime_avro_canonical_form(a, strlen(a), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pcf);
    CU_ASSERT_STRING_EQUAL(pcf, "{\"name\":\"n.R\",\"type\":\"record\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
                                "{\"name\":\"o\",\"type\":[\"null\",\"long\"]}]}");
    free(pcf);
}

static void test_registry_covers_every_topic(void)
{
    static const char *const topics[] = {"prime.users", "prime.auth", "prime.projects", "prime.audio",
                                         "prime.recall", "prime.sessions", "prime.presets", "prime.collab",
                                         "prime.analysis", "prime.snapshots", "prime.audit", NULL};
    CU_ASSERT(prime_registry_count(reg) >= 41);
    for (int k = 0; topics[k]; k++) {
        int found = 0;
        for (size_t i = 0; i < prime_registry_count(reg); i++)
            found += !strcmp(prime_event_type_topic(prime_registry_at(reg, i)), topics[k]);
        CU_ASSERT(found > 0);
    }
    CU_ASSERT_PTR_NOT_NULL(prime_registry_find(reg, "project.saved"));
    CU_ASSERT_PTR_NULL(prime_registry_find(reg, "project.nope"));
}

/* Every type, many value sets: encode -> decode gives the same event, and
 * the JSON form reads back to the same bytes. */
static void test_roundtrip_every_type(void)
{
    size_t types = 0;
    for (size_t i = 0; i < prime_registry_count(reg); i++) {
        const char *name = prime_event_type_name(prime_registry_at(reg, i));
        for (uint64_t seed = 0; seed < 40; seed++) {
            prime_error_t err;
            prime_event_t *ev, *back = NULL, *again = NULL;
            void *bytes = NULL, *bytes2 = NULL;
            size_t len = 0, len2 = 0;
            char *j1, *j2;

            prime_error_clear(&err);
            ev = prime_event_example(reg, name, seed, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
            if (prime_event_validate(ev, &err))
                fprintf(stderr, "%s seed %llu: %s: %s\n", name, (unsigned long long)seed, err.field, err.message);
            CU_ASSERT_EQUAL(err.code, PRIME_OK);
            CU_ASSERT_EQUAL_FATAL(prime_event_encode(ev, &bytes, &len, &err), PRIME_OK);
            CU_ASSERT_EQUAL_FATAL(prime_event_decode(reg, bytes, len, &back, &err), PRIME_OK);
            CU_ASSERT_STRING_EQUAL(prime_event_type_name(prime_event_type(back)), name);
            j1 = prime_event_to_json(ev, &err);
            j2 = prime_event_to_json(back, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(j1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(j2);
            CU_ASSERT_STRING_EQUAL(j1, j2);
            CU_ASSERT_EQUAL_FATAL(prime_event_from_json(reg, j1, strlen(j1), &again, &err), PRIME_OK);
            CU_ASSERT_EQUAL_FATAL(prime_event_encode(again, &bytes2, &len2, &err), PRIME_OK);
            CU_ASSERT_EQUAL(len, len2);
            CU_ASSERT(len == len2 && memcmp(bytes, bytes2, len) == 0);
            free(j1);
            free(j2);
            free(bytes);
            free(bytes2);
            prime_event_free(ev);
            prime_event_free(back);
            prime_event_free(again);
        }
        types++;
    }
    CU_ASSERT_EQUAL(types, prime_registry_count(reg));
}

static void encode_example(const char *type, void **bytes, size_t *len)
{
    prime_event_t *ev = prime_event_example(reg, type, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL_FATAL(prime_event_encode(ev, bytes, len, NULL), PRIME_OK);
    prime_event_free(ev);
}

static prime_errcode_t decode(const void *data, size_t len, prime_error_t *err)
{
    prime_event_t *ev = NULL;
    prime_errcode_t rc;
    prime_error_clear(err);
    rc = prime_event_decode(reg, data, len, &ev, err);
    CU_ASSERT((rc == PRIME_OK) == (ev != NULL));
    prime_event_free(ev);
    return rc;
}

static void test_truncated_messages(void)
{
    void *bytes;
    size_t len;
    prime_error_t err;

    encode_example("project.saved", &bytes, &len);
    for (size_t cut = 0; cut < len; cut++) {
        CU_ASSERT_EQUAL(decode(bytes, cut, &err), PRIME_ERR_DECODE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, cut < 10 ? "truncated message" : "truncated project.saved body"));
    }
    free(bytes);
}

static void test_trailing_bytes(void)
{
    void *bytes;
    size_t len;
    prime_error_t err;
    char *longer;

    encode_example("session.heartbeat", &bytes, &len);
    longer = malloc(len + 1);
    memcpy(longer, bytes, len);
    longer[len] = 0;
    CU_ASSERT_EQUAL(decode(longer, len + 1, &err), PRIME_ERR_DECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "trailing bytes"));
    free(longer);
    free(bytes);
}

static void test_garbage_and_bad_marker(void)
{
    unsigned char buf[512];
    uint64_t x = 88172645463325252ULL;
    prime_error_t err;

    CU_ASSERT_EQUAL(decode("{\"type\":\"project.saved\"}", 24, &err), PRIME_ERR_DECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "expected marker C3 01"));
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(round % 500);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        if (round % 2 && len >= 2)
            buf[0] = 0xC3, buf[1] = 0x01;
        CU_ASSERT_NOT_EQUAL(decode(buf, len, &err), PRIME_OK);
        CU_ASSERT(err.code == PRIME_ERR_DECODE || err.code == PRIME_ERR_UNKNOWN_TYPE);
    }
}

/* A known fingerprint followed by random bytes must fail cleanly (or, very
 * rarely, decode to something that then fails validation). */
static void test_garbage_body_with_known_fingerprint(void)
{
    unsigned char buf[300];
    uint64_t fp = prime_event_type_fingerprint(prime_registry_find(reg, "project.created"));
    uint64_t x = 0x2545F4914F6CDD1DULL;
    prime_error_t err;

    buf[0] = 0xC3, buf[1] = 0x01;
    for (int i = 0; i < 8; i++)
        buf[2 + i] = (unsigned char)(fp >> (8 * i));
    for (int round = 0; round < 3000; round++) {
        size_t len = 10 + (size_t)(round % 290);
        prime_event_t *ev = NULL;
        for (size_t i = 10; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        prime_error_clear(&err);
        if (prime_event_decode(reg, buf, len, &ev, &err) == PRIME_OK) {
            CU_ASSERT_NOT_EQUAL(prime_event_validate(ev, &err), PRIME_OK);
            prime_event_free(ev);
        } else {
            CU_ASSERT_EQUAL(err.code, PRIME_ERR_DECODE);
        }
    }
}

static void test_wrong_fingerprint(void)
{
    void *bytes;
    size_t len;
    prime_error_t err;

    encode_example("project.created", &bytes, &len);
    ((unsigned char *)bytes)[5] ^= 0x40;
    CU_ASSERT_EQUAL(decode(bytes, len, &err), PRIME_ERR_UNKNOWN_TYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "unknown writer schema fingerprint"));
    free(bytes);
}

static void test_oversized(void)
{
    prime_limits_t saved = *prime_registry_limits(reg), small = saved;
    prime_event_t *ev = prime_event_example(reg, "project.created", 0, NULL);
    void *bytes = NULL;
    size_t len, big_len;
    prime_error_t err;
    char *big;

    small.max_message_bytes = 100;
    prime_registry_set_limits(reg, &small);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_encode(ev, &bytes, &len, &err), PRIME_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "over the 100-byte message limit"));
    big = calloc(1, 101);
    CU_ASSERT_EQUAL(decode(big, 101, &err), PRIME_ERR_TOO_LARGE);
    prime_registry_set_limits(reg, &saved);

    /* A project_data document over max_json_bytes. */
    big_len = saved.max_json_bytes + 1;
    big = realloc(big, big_len + 1);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "project_data", big, big_len, NULL), PRIME_OK);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_ERR_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(err.field, "project_data");
    free(big);
    prime_event_free(ev);
}

/* Issue 16: a 5.5 KB message whose array holds ~5,150 empty strings (one
 * byte each on the wire, about a hundred in avro-c's array once it has
 * doubled) made the decode allocator refuse the array's growth; avro-c then
 * left the array's storage NULL with its old count, and freeing the partial
 * event crashed. The fingerprint picks the schema, so any topic carries it.
 * It must be a clean decode error naming the field. */
static void test_huge_array_of_empty_strings(void)
{
    prime_event_t *ev = prime_event_example(reg, "audio.file_uploaded", 0, NULL);
    void *bytes = NULL;
    size_t len = 0;
    prime_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    for (int i = 0; i < 5150; i++)
        CU_ASSERT_EQUAL_FATAL(prime_event_append_string(ev, "tags", "", 0, NULL), PRIME_OK);
    CU_ASSERT_EQUAL_FATAL(prime_event_encode(ev, &bytes, &len, NULL), PRIME_OK);
    CU_ASSERT(len > 5150 && len < 6000);
    CU_ASSERT_EQUAL(decode(bytes, len, &err), PRIME_ERR_DECODE);
    CU_ASSERT_STRING_EQUAL(err.field, "tags");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "items"));
    free(bytes);
    prime_event_free(ev);
}

/* An audio.file_uploaded message whose tags are ["x"]: its body ends with
 * the block count 1 (02), the item (02 'x'), the end block (00) and is_mix. */
static void encode_one_tag(unsigned char **bytes, size_t *len)
{
    prime_event_t *ev = prime_event_example(reg, "audio.file_uploaded", 0, NULL), *one = NULL;
    char *text = prime_event_to_json(ev, NULL), *edited;
    json_t *j = json_loads(text, 0, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_object_set_new(j, "tags", json_pack("[s]", "x"));
    json_object_set_new(j, "is_mix", json_false());
    edited = json_dumps(j, JSON_COMPACT);
    CU_ASSERT_EQUAL_FATAL(prime_event_from_json(reg, edited, strlen(edited), &one, NULL), PRIME_OK);
    CU_ASSERT_EQUAL_FATAL(prime_event_encode(one, (void **)bytes, len, NULL), PRIME_OK);
    CU_ASSERT_EQUAL_FATAL(memcmp(*bytes + *len - 5, "\x02\x02x\x00\x00", 5), 0);
    free(edited);
    free(text);
    json_decref(j);
    prime_event_free(ev);
    prime_event_free(one);
}

/* The tail of that message replaced by forged bytes must give a decode
 * error naming tags (or is_mix) and what was wrong. */
static void expect_forged_tail(const unsigned char *tail, size_t tail_len, const char *field, const char *what)
{
    unsigned char *bytes, *forged;
    size_t len;
    prime_error_t err;

    encode_one_tag(&bytes, &len);
    forged = malloc(len - 5 + tail_len);
    memcpy(forged, bytes, len - 5);
    memcpy(forged + len - 5, tail, tail_len);
    CU_ASSERT_EQUAL(decode(forged, len - 5 + tail_len, &err), PRIME_ERR_DECODE);
    CU_ASSERT_STRING_EQUAL(err.field, field);
    if (!strstr(err.message, what))
        fprintf(stderr, "expected '%s' in: %s\n", what, err.message);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, what));
    free(forged);
    free(bytes);
}

static void test_forged_counts_and_lengths(void)
{
    static const unsigned char huge_count[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00, 0x00};
    static const unsigned char min_count[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
    static const unsigned char wrong_size[] = {0x01, 0x06, 0x02, 'x', 0x00, 0x00};
    static const unsigned char long_string[] = {0x02, 0xfe, 0xff, 0x03, 'x', 0x00, 0x00};
    static const unsigned char bad_bool[] = {0x02, 0x02, 'x', 0x00, 0x02};
    static const unsigned char block_size_ok[] = {0x01, 0x04, 0x02, 'x', 0x00, 0x01};
    unsigned char many[1 + 2 + 101 + 2];
    unsigned char *bytes, *ok;
    size_t len;
    prime_event_t *ev = NULL;
    const char *tag = NULL;
    bool is_mix = false;

    expect_forged_tail(huge_count, sizeof(huge_count), "tags", "a block of 2199023255552 items, 2 bytes left");
    expect_forged_tail(min_count, sizeof(min_count), "tags", "out of range");
    expect_forged_tail(wrong_size, sizeof(wrong_size), "tags", "block size does not match");
    expect_forged_tail(long_string, sizeof(long_string), "tags", "string of 32767 bytes");
    expect_forged_tail(bad_bool, sizeof(bad_bool), "is_mix", "boolean");
    /* 101 empty items in one block: within the bytes, over max_items. */
    many[0] = 0xca, many[1] = 0x01; /* zig-zag 101 */
    memset(many + 2, 0, 101);
    many[103] = 0x00, many[104] = 0x00;
    expect_forged_tail(many, 105, "tags", "more than the 100 items its schema allows");

    /* A negative count with its right byte size is valid Avro. */
    encode_one_tag(&bytes, &len);
    ok = malloc(len + 1);
    memcpy(ok, bytes, len - 5);
    memcpy(ok + len - 5, block_size_ok, sizeof(block_size_ok));
    CU_ASSERT_EQUAL_FATAL(prime_event_decode(reg, ok, len + 1, &ev, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_event_get_array_string(ev, "tags", 0, &tag, NULL, NULL), PRIME_OK);
    CU_ASSERT_STRING_EQUAL(tag, "x");
    CU_ASSERT_EQUAL(prime_event_get_bool(ev, "is_mix", &is_mix, NULL, NULL), PRIME_OK);
    CU_ASSERT(is_mix);
    prime_event_free(ev);
    free(ok);
    free(bytes);
}

/* Sets dst (a field of an avro-c record of the given JSON type) from the
 * field of the same name in src, through the public getters only, so the
 * old-version message is built independently of the resolution under test. */
static int copy_field(const prime_event_t *src, const char *name, json_t *type, avro_value_t *dst)
{
    avro_value_t target = *dst;
    const char *t, *s;
    size_t len, n;
    bool is_null = false;

    if (json_is_array(type)) { /* ["null", T] */
        type = json_array_get(type, 1);
        t = json_is_string(type) ? json_string_value(type) : json_string_value(json_object_get(type, "type"));
        if (!strcmp(t, "string")) {
            prime_event_get_string(src, name, &s, &len, NULL);
            is_null = s == NULL;
        } else if (!strcmp(t, "array")) {
            prime_event_get_array_size(src, name, &n, &is_null, NULL);
        } else {
            double d;
            int64_t l;
            int32_t i;
            bool b;
            if (!strcmp(t, "double"))
                prime_event_get_double(src, name, &d, &is_null, NULL);
            else if (!strcmp(t, "long"))
                prime_event_get_long(src, name, &l, &is_null, NULL);
            else if (!strcmp(t, "int"))
                prime_event_get_int(src, name, &i, &is_null, NULL);
            else
                prime_event_get_bool(src, name, &b, &is_null, NULL);
        }
        if (avro_value_set_branch(dst, is_null ? 0 : 1, &target))
            return -1;
        if (is_null)
            return avro_value_set_null(&target);
    }
    t = json_is_string(type) ? json_string_value(type) : json_string_value(json_object_get(type, "type"));
    if (!strcmp(t, "string")) {
        prime_event_get_string(src, name, &s, &len, NULL);
        return avro_value_set_string_len(&target, s, len + 1);
    }
    if (!strcmp(t, "array")) {
        prime_event_get_array_size(src, name, &n, NULL, NULL);
        for (size_t k = 0; k < n; k++) {
            avro_value_t item;
            prime_event_get_array_string(src, name, k, &s, &len, NULL);
            if (avro_value_append(&target, &item, NULL) || avro_value_set_string_len(&item, s, len + 1))
                return -1;
        }
        return 0;
    }
    if (!strcmp(t, "double")) {
        double d;
        prime_event_get_double(src, name, &d, NULL, NULL);
        return avro_value_set_double(&target, d);
    }
    if (!strcmp(t, "long")) {
        int64_t l;
        prime_event_get_long(src, name, &l, NULL, NULL);
        return avro_value_set_long(&target, l);
    }
    if (!strcmp(t, "int")) {
        int32_t i;
        prime_event_get_int(src, name, &i, NULL, NULL);
        return avro_value_set_int(&target, i);
    }
    if (!strcmp(t, "boolean")) {
        bool b;
        prime_event_get_bool(src, name, &b, NULL, NULL);
        return avro_value_set_boolean(&target, b);
    }
    return -1;
}

/* Builds the project.created schema as it was before "mood" was added
 * (an optional field), writes a message with it through avro-c directly,
 * and reads it with the current schema. */
static void test_schema_evolution(void)
{
    const prime_event_type_t *t = prime_registry_find(reg, "project.created");
    json_t *old = json_loads(prime_event_type_schema_json(t), 0, NULL);
    json_t *fields = json_object_get(old, "fields");
    prime_event_t *current = prime_event_example(reg, "project.created", 0, NULL), *back = NULL;
    avro_schema_t old_schema;
    avro_value_iface_t *iface;
    avro_value_t old_value, dst;
    char *old_json, *pcf, *j_cur, *j_back;
    unsigned char msg[4096];
    size_t body;
    uint64_t fp;
    avro_writer_t w;
    prime_error_t err;
    const char *mood;

    for (size_t i = 0; i < json_array_size(fields); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(fields, i), "name")), "mood"))
            json_array_remove(fields, i);
    old_json = json_dumps(old, JSON_COMPACT);
    CU_ASSERT_EQUAL_FATAL(avro_schema_from_json_length(old_json, strlen(old_json), &old_schema), 0);
    iface = avro_generic_class_from_schema(old_schema);
    avro_generic_value_new(iface, &old_value);
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        avro_value_get_by_index(&old_value, i, &dst, NULL);
        CU_ASSERT_EQUAL_FATAL(copy_field(current, json_string_value(json_object_get(f, "name")),
                                         json_object_get(f, "type"), &dst), 0);
    }

    pcf = prime_avro_canonical_form(old_json, strlen(old_json), NULL);
    fp = prime_avro_crc64(pcf, strlen(pcf));
    msg[0] = 0xC3, msg[1] = 0x01;
    for (int i = 0; i < 8; i++)
        msg[2 + i] = (unsigned char)(fp >> (8 * i));
    avro_value_sizeof(&old_value, &body);
    CU_ASSERT_FATAL(body + 10 <= sizeof(msg));
    w = avro_writer_memory((char *)msg + 10, (int64_t)body);
    CU_ASSERT_EQUAL_FATAL(avro_value_write(w, &old_value), 0);
    avro_writer_free(w);

    /* Unknown until the registry learns the old schema. */
    CU_ASSERT_EQUAL(decode(msg, 10 + body, &err), PRIME_ERR_UNKNOWN_TYPE);
    prime_error_clear(&err);
    if (prime_registry_add_writer_schema(reg, old_json, strlen(old_json), &err))
        fprintf(stderr, "add_writer_schema: %s\n", err.message);
    CU_ASSERT_EQUAL_FATAL(err.code, PRIME_OK);
    CU_ASSERT_EQUAL_FATAL(prime_event_decode(reg, msg, 10 + body, &back, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_event_validate(back, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_event_get_string(back, "mood", &mood, NULL, NULL), PRIME_OK);
    CU_ASSERT_PTR_NULL(mood); /* the added field takes its default */
    CU_ASSERT_EQUAL(prime_event_set_null(current, "mood", NULL), PRIME_OK);
    j_cur = prime_event_to_json(current, NULL);
    j_back = prime_event_to_json(back, NULL);
    CU_ASSERT_STRING_EQUAL(j_cur, j_back);
    free(j_cur);
    free(j_back);

    /* An incompatible old schema (name became an int) is refused. */
    json_object_set_new(json_array_get(fields, 8), "type", json_string("int"));
    free(old_json);
    old_json = json_dumps(old, JSON_COMPACT);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_registry_add_writer_schema(reg, old_json, strlen(old_json), &err), PRIME_ERR_SCHEMA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "cannot be read as the current project.created schema"));

    free(pcf);
    free(old_json);
    json_decref(old);
    avro_value_decref(&old_value);
    avro_value_iface_decref(iface);
    avro_schema_decref(old_schema);
    prime_event_free(current);
    prime_event_free(back);
}

/* Issue 12: an id has one spelling. A message written by another client
 * (avro-c here, bytes patched) with upper-case UUIDs decodes to lower case;
 * an event built from JSON or the setters with upper-case UUIDs holds and
 * encodes lower case, and the owner id (the producer's message key) too.
 * Text that is not a UUID is left as it is, for validation to refuse. */
static void upper_in_place(unsigned char *bytes, size_t len, const char *id)
{
    unsigned char *at;
    while ((at = memmem(bytes, len, id, 36))) {
        for (int k = 0; k < 36; k++)
            at[k] = (unsigned char)toupper(at[k]);
    }
}

static void test_uuids_are_canonical(void)
{
    static const char *const ids[] = {"event_id", "actor_user_id", "owner_user_id", "project_id"};
    prime_event_t *ev = prime_event_example(reg, "project.created", 0, NULL), *back = NULL, *parsed = NULL;
    char want[4][PRIME_UUID_TEXT], upper[PRIME_UUID_TEXT], *json;
    unsigned char *bytes;
    size_t len;
    prime_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    for (int i = 0; i < 4; i++) {
        strcpy(want[i], prime_event_string(ev, ids[i]));
        CU_ASSERT_PTR_NOT_NULL(strpbrk(want[i], "abcdef")); /* the test needs letters to change */
    }
    CU_ASSERT_EQUAL_FATAL(prime_event_encode(ev, (void **)&bytes, &len, NULL), PRIME_OK);
    for (int i = 0; i < 4; i++)
        upper_in_place(bytes, len, want[i]);
    CU_ASSERT_PTR_NULL(memmem(bytes, len, want[0], 36));
    prime_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(prime_event_decode(reg, bytes, len, &back, &err), PRIME_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(prime_event_string(back, ids[i]), want[i]);
    CU_ASSERT_EQUAL(prime_event_validate(back, &err), PRIME_OK);

    /* From JSON with upper-case ids: held, printed and encoded in lower case. */
    json = prime_event_to_json(ev, NULL);
    for (int i = 0; i < 4; i++) {
        char *at;
        while ((at = strstr(json, want[i])))
            for (int k = 0; k < 36; k++)
                at[k] = (char)toupper((unsigned char)at[k]);
    }
    CU_ASSERT_EQUAL_FATAL(prime_event_from_json(reg, json, strlen(json), &parsed, &err), PRIME_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(prime_event_string(parsed, ids[i]), want[i]);
    free(json);
    free(bytes);
    CU_ASSERT_EQUAL_FATAL(prime_event_encode(parsed, (void **)&bytes, &len, NULL), PRIME_OK);
    for (int i = 0; i < 4; i++) {
        prime_uuid_canonical(want[i], upper);
        for (int k = 0; k < 36; k++)
            upper[k] = (char)toupper((unsigned char)upper[k]);
        CU_ASSERT_PTR_NOT_NULL(memmem(bytes, len, want[i], 36));
        CU_ASSERT_PTR_NULL(memmem(bytes, len, upper, 36));
    }
    free(bytes);

    /* The setters, the nullable project_id of an upload included. */
    CU_ASSERT_EQUAL(prime_event_set_string(parsed, "owner_user_id", "8D2F1C3E-5B7A-4C19-9E0D-2A6B4F8C1D7E", 36, NULL),
                    PRIME_OK);
    CU_ASSERT_STRING_EQUAL(prime_event_string(parsed, "owner_user_id"), "8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e");
    prime_event_free(ev);
    ev = prime_event_example(reg, "audio.file_uploaded", 0, NULL);
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "project_id", "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA", 36, NULL),
                    PRIME_OK);
    CU_ASSERT_STRING_EQUAL(prime_event_string(ev, "project_id"), "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa");

    /* Not a UUID: kept whole (not cut to 36 characters) and refused. */
    CU_ASSERT_EQUAL(prime_event_set_string(parsed, "owner_user_id", "8D2F1C3E-5B7A-4C19-9E0D-2A6B4F8C1D7E-X", 38, NULL),
                    PRIME_OK);
    CU_ASSERT_STRING_EQUAL(prime_event_string(parsed, "owner_user_id"), "8D2F1C3E-5B7A-4C19-9E0D-2A6B4F8C1D7E-X");
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_validate(parsed, &err), PRIME_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.field, "owner_user_id");
    prime_event_free(ev);
    prime_event_free(back);
    prime_event_free(parsed);
}

/* Schema versions (issue 16 item 2): a registry from files named
 * <type>/v<N>.avsc reads every version with the newest, and refuses a
 * version the next one or the newest cannot read. The files here are the
 * shipped project.created with one field added or changed. */
static char *created_with(const char *field_json, const char *change_field, const char *change_type)
{
    json_t *j = json_loads(prime_event_type_schema_json(prime_registry_find(reg, "project.created")), 0, NULL);
    json_t *fields = json_object_get(j, "fields"), *f;
    size_t i;
    char *text;

    if (field_json)
        json_array_append_new(fields, json_loads(field_json, 0, NULL));
    json_array_foreach(fields, i, f)
        if (change_field && !strcmp(json_string_value(json_object_get(f, "name")), change_field))
            json_object_set_new(f, "type", json_loads(change_type, JSON_DECODE_ANY, NULL));
    text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    return text;
}

/* A registry from up to three files (NULL names end the list); err is set
 * when it is refused. */
static prime_registry_t *registry_of(prime_error_t *err, const char *n1, char *t1, const char *n2, char *t2,
                                     const char *n3, char *t3)
{
    prime_embedded_file_t files[4] = {{0}};
    const char *names[3] = {n1, n2, n3};
    char *texts[3] = {t1, t2, t3};
    prime_registry_t *r;
    size_t k = 0;

    for (int i = 0; i < 3 && names[i]; i++, k++)
        files[k] = (prime_embedded_file_t){names[i], (const unsigned char *)texts[i], strlen(texts[i])};
    prime_error_clear(err);
    r = prime_registry_new_from(files, err);
    for (int i = 0; i < 3; i++)
        free(texts[i]);
    return r;
}

static void expect_refused(prime_registry_t *r, const prime_error_t *err, const char *file, const char *what)
{
    CU_ASSERT_PTR_NULL(r);
    prime_registry_free(r);
    CU_ASSERT_EQUAL(err->code, PRIME_ERR_SCHEMA);
    if (!strstr(err->message, file) || !strstr(err->message, what))
        fprintf(stderr, "expected '%s' and '%s' in: %s\n", file, what, err->message);
    CU_ASSERT_PTR_NOT_NULL(strstr(err->message, file));
    CU_ASSERT_PTR_NOT_NULL(strstr(err->message, what));
}

#define NOTES "{\"name\":\"studio_notes\",\"type\":[\"null\",\"string\"],\"default\":null}"

static void test_schema_versions(void)
{
    prime_registry_t *r;
    prime_error_t err;
    prime_event_t *ev = prime_event_example(reg, "project.created", 0, NULL), *back = NULL;
    void *bytes;
    size_t len;
    char *j1, *j2, *want;

    /* v2 adds an optional field: v1 messages read with v2, the field null. */
    r = registry_of(&err, "project.created/v1.avsc", created_with(NULL, NULL, NULL), "project.created/v2.avsc",
                    created_with(NOTES, NULL, NULL), NULL, NULL);
    if (!r)
        fprintf(stderr, "v1+v2: %s\n", err.message);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(prime_registry_count(r), 1);
    CU_ASSERT_EQUAL(prime_registry_writer_count(r), 2);
    CU_ASSERT(prime_event_type_field_index(prime_registry_find(r, "project.created"), "studio_notes") >= 0);
    CU_ASSERT_EQUAL_FATAL(prime_event_encode(ev, &bytes, &len, NULL), PRIME_OK); /* written with v1 */
    CU_ASSERT_EQUAL_FATAL(prime_event_decode(r, bytes, len, &back, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_event_validate(back, &err), PRIME_OK);
    CU_ASSERT_PTR_NULL(prime_event_string(back, "studio_notes"));
    j1 = prime_event_to_json(ev, NULL);
    j2 = prime_event_to_json(back, NULL);
    want = malloc(strlen(j1) + 32);
    sprintf(want, "%.*s,\"studio_notes\":null}", (int)strlen(j1) - 1, j1);
    CU_ASSERT_STRING_EQUAL(j2, want);
    free(want);
    free(j1);
    free(j2);
    free(bytes);
    prime_event_free(back);
    prime_event_free(ev);
    prime_registry_free(r);

    /* What the build refuses. */
    r = registry_of(&err, "project.created/v1.avsc", created_with(NULL, NULL, NULL), "project.created/v2.avsc",
                    created_with("{\"name\":\"studio_notes\",\"type\":\"string\"}", NULL, NULL), NULL, NULL);
    expect_refused(r, &err, "project.created/v1.avsc", "not in the writer and has no usable default");
    CU_ASSERT_STRING_EQUAL(err.field, "studio_notes");
    r = registry_of(&err, "project.created/v1.avsc", created_with(NULL, NULL, NULL), "project.created/v2.avsc",
                    created_with(NULL, "name", "\"int\""), NULL, NULL);
    expect_refused(r, &err, "project.created/v1.avsc", "written as string, read as int");
    r = registry_of(&err, "project.created/v1.avsc", created_with(NULL, NULL, NULL), "project.created/v2.avsc",
                    created_with(NULL, "bpm", "\"double\""), NULL, NULL);
    expect_refused(r, &err, "project.created/v1.avsc", "the writer allows null, the reader requires a value");
    r = registry_of(&err, "project.created/v1.avsc",
                    created_with("{\"name\":\"mode\",\"type\":[\"null\",\"string\"],\"default\":null,"
                                 "\"prime.one_of\":[\"solo\",\"band\"]}", NULL, NULL),
                    "project.created/v2.avsc",
                    created_with("{\"name\":\"mode\",\"type\":[\"null\",\"string\"],\"default\":null,"
                                 "\"prime.one_of\":[\"solo\"]}", NULL, NULL),
                    NULL, NULL);
    expect_refused(r, &err, "project.created/v1.avsc", "'band' is allowed by the writer, not by the reader");
    /* Each step on its own: v1 -> v3 is fine, v2 -> v3 is not. */
    r = registry_of(&err, "project.created/v1.avsc", created_with(NULL, NULL, NULL), "project.created/v2.avsc",
                    created_with("{\"name\":\"x\",\"type\":[\"null\",\"string\"],\"default\":null}", NULL, NULL),
                    "project.created/v3.avsc",
                    created_with("{\"name\":\"x\",\"type\":[\"null\",\"int\"],\"default\":null}", NULL, NULL));
    expect_refused(r, &err, "project.created/v2.avsc", "written as string, read as int");
    r = registry_of(&err, "project.created/v1.avsc", created_with(NULL, NULL, NULL), "project.created/v3.avsc",
                    created_with(NOTES, NULL, NULL), NULL, NULL);
    expect_refused(r, &err, "project.created/v3.avsc", "v2 is missing");
    r = registry_of(&err, "project.saved/v1.avsc", created_with(NULL, NULL, NULL), NULL, NULL, NULL, NULL);
    expect_refused(r, &err, "project.saved/v1.avsc", "not the folder's name");
    r = registry_of(&err, "project.saved/v1.avsc", created_with(NULL, NULL, NULL), "project.saved/v2.avsc",
                    strdup(prime_event_type_schema_json(prime_registry_find(reg, "project.saved"))), NULL, NULL);
    expect_refused(r, &err, "project.saved/v1.avsc", "prime.event_type is project.created, not the folder's name");
    r = registry_of(&err, "project.created.avsc", created_with(NULL, NULL, NULL), NULL, NULL, NULL, NULL);
    expect_refused(r, &err, "project.created.avsc", "named <event type>/v<N>.avsc");
}

/* RFC 9562's namespace for DNS names, and the example Python's uuid
 * documentation gives: uuid5(NAMESPACE_DNS, 'python.org'). */
static void test_uuid_v5(void)
{
    char out[PRIME_UUID_TEXT];
    CU_ASSERT_EQUAL_FATAL(prime_uuid_v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org", 10, out), 0);
    CU_ASSERT_STRING_EQUAL(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    CU_ASSERT_EQUAL(prime_uuid_v5("not-a-uuid", "x", 1, out), -1);
    CU_ASSERT_EQUAL(prime_uuid_v7(out), 0);
    CU_ASSERT_EQUAL(out[14], '7');
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"canonical form and fingerprint match the Avro spec vectors", test_spec_vectors},
        {"logical types and custom attributes are stripped", test_logical_types_and_attributes_are_stripped},
        {"registry has a schema for every topic", test_registry_covers_every_topic},
        {"every event type round-trips (binary and JSON)", test_roundtrip_every_type},
        {"truncated messages give a specific error", test_truncated_messages},
        {"trailing bytes are an error", test_trailing_bytes},
        {"garbage and a bad marker give a specific error", test_garbage_and_bad_marker},
        {"garbage after a known fingerprint fails cleanly", test_garbage_body_with_known_fingerprint},
        {"an unknown fingerprint is named", test_wrong_fingerprint},
        {"oversized messages and documents are refused", test_oversized},
        {"an array of thousands of empty strings is a decode error, not a crash", test_huge_array_of_empty_strings},
        {"forged counts, lengths and block sizes are decode errors naming the field", test_forged_counts_and_lengths},
        {"an old writer schema is read with the new reader", test_schema_evolution},
        {"UUIDv5 matches the published example; UUIDv7 has its version", test_uuid_v5},
        {"UUIDs are lower case after decode, JSON and setters, and on the wire", test_uuids_are_canonical},
        {"every schema version is read with the newest; incompatible versions are refused", test_schema_versions},
        {NULL, NULL},
    };
    return prime_test_run("codec", suite_init, suite_cleanup, tests);
}
