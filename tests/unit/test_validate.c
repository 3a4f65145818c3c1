/* Value rules and JSON input: every rule refuses what it should, names the
 * field, and accepts the good neighbours of each bad value. */
#include "prime/event.h"
#include "prime/jsontext.h"
#include "../support/prime_test.h"

#include <cjson/cJSON.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static prime_registry_t *reg;

static int suite_init(void)
{
    reg = prime_registry_new(NULL);
    return reg ? 0 : 1;
}

static int suite_cleanup(void)
{
    prime_registry_free(reg);
    return 0;
}

/* The seed-0 example of type with one member replaced by value_json (or
 * removed when value_json is NULL), read from JSON and validated. */
static prime_errcode_t try_json(const char *type, const char *field, const char *value_json, prime_error_t *err)
{
    prime_event_t *ev = prime_event_example(reg, type, 0, NULL), *parsed = NULL;
    char *text = prime_event_to_json(ev, NULL), *patched;
    json_t *obj = json_loads(text, 0, NULL);
    prime_errcode_t rc;

    if (value_json)
        json_object_set_new(obj, field, json_loads(value_json, JSON_DECODE_ANY, NULL));
    else
        json_object_del(obj, field);
    patched = json_dumps(obj, JSON_COMPACT);
    prime_error_clear(err);
    rc = prime_event_from_json(reg, patched, strlen(patched), &parsed, err);
    if (!rc)
        rc = prime_event_validate(parsed, err);
    free(text);
    free(patched);
    json_decref(obj);
    prime_event_free(ev);
    prime_event_free(parsed);
    return rc;
}

static const struct rule_case {
    const char *type, *field, *value; /* value: JSON text; NULL removes the member */
    prime_errcode_t want;
    const char *message_part;          /* for failures */
} rule_cases[] = {
    {"project.created", "bpm", "19.9", PRIME_ERR_INVALID, "BPM from 20 to 999"},
    {"project.created", "bpm", "1000", PRIME_ERR_INVALID, "BPM from 20 to 999"},
    {"project.created", "bpm", "140.5", PRIME_OK, NULL},
    /* Bounds of the columns values land in (DECIMAL(10,3), DECIMAL(5,2)). */
    {"audio.file_uploaded", "duration_seconds", "9999999.999", PRIME_OK, NULL},
    {"audio.file_uploaded", "duration_seconds", "1e7", PRIME_ERR_INVALID, "most its column audio_files.duration_seconds holds"},
    {"audio.stem_uploaded", "duration_seconds", "10000000", PRIME_ERR_INVALID, "at most 9999999.999"},
    {"audio.analyzed", "duration_seconds", "9999999.9996", PRIME_ERR_INVALID, "at most 9999999.999"},
    {"session.heartbeat", "cursor_position", "9999999.999", PRIME_OK, NULL},
    {"session.heartbeat", "cursor_position", "1e7", PRIME_ERR_INVALID, "session_states.cursor_position"},
    {"session.joined", "cursor_position", "12345678", PRIME_ERR_INVALID, "at most 9999999.999"},
    {"audio.analyzed", "dynamic_range", "999.99", PRIME_OK, NULL},
    {"audio.analyzed", "dynamic_range", "1000", PRIME_ERR_INVALID, "999.99"},
    {"project.created", "bpm", "20", PRIME_OK, NULL},
    {"project.created", "bpm", "\"fast\"", PRIME_ERR_INVALID, "expected a number, got a string"},
    {"project.created", "target_lufs", "-70.5", PRIME_ERR_INVALID, "-70 to +5 LUFS"},
    {"project.created", "target_lufs", "5.01", PRIME_ERR_INVALID, "-70 to +5 LUFS"},
    {"project.created", "target_lufs", "-14", PRIME_OK, NULL},
    {"project.created", "time_signature", "\"4/3\"", PRIME_ERR_INVALID, "time signature"},
    {"project.created", "time_signature", "\"0/4\"", PRIME_ERR_INVALID, "time signature"},
    {"project.created", "time_signature", "\"4-4\"", PRIME_ERR_INVALID, "time signature"},
    {"project.created", "time_signature", "\"7/8\"", PRIME_OK, NULL},
    {"project.created", "key", "\"H\"", PRIME_ERR_INVALID, "musical key"},
    {"project.created", "key", "\"C##\"", PRIME_ERR_INVALID, "musical key"},
    {"project.created", "key", "\"C#m\"", PRIME_OK, NULL},
    {"project.created", "key", "\"Bb minor\"", PRIME_OK, NULL},
    {"project.created", "sample_rate", "44000", PRIME_ERR_INVALID, "sample rate"},
    {"project.created", "sample_rate", "96000", PRIME_OK, NULL},
    {"project.created", "sample_rate", "4.41e4", PRIME_OK, NULL}, /* JSON numbers have no int/real kinds */
    {"project.created", "sample_rate", "44100.5", PRIME_ERR_INVALID, "expected an integer, got 44100.5"},
    {"audio.file_uploaded", "file_size_bytes", "9007199254740994", PRIME_ERR_INVALID, "exact JSON (2^53)"},
    {"audio.file_uploaded", "file_size_bytes", "9007199254740992", PRIME_OK, NULL},
    {"project.created", "bit_depth", "20", PRIME_ERR_INVALID, "bit depth"},
    {"project.created", "project_data", "[1,2]", PRIME_ERR_INVALID, "expected a JSON object"},
    {"project.created", "project_data", "\"{bad\"", PRIME_ERR_INVALID, "expected JSON text"},
    {"project.created", "project_data", "\"{\\\"a\\\":1,\\\"a\\\":2}\"", PRIME_ERR_INVALID, "duplicate"},
    {"project.created", "project_data", "{\"tracks\":[]}", PRIME_OK, NULL},
    {"project.created", "project_data", "\"{\\\"tracks\\\":[]}\"", PRIME_OK, NULL},
    {"project.created", "project_data", NULL, PRIME_ERR_INVALID, "required field is missing"},
    {"project.created", "project_data", "null", PRIME_ERR_INVALID, "required field is null"},
    {"project.created", "project_id", "\"not-a-uuid\"", PRIME_ERR_INVALID, "expected a UUID"},
    {"project.created", "project_id", "\"8D2F1C3E-5B7A-4C19-9E0D-2A6B4F8C1D7E\"", PRIME_OK, NULL},
    {"project.created", "name", "\"\"", PRIME_ERR_INVALID, "must not be empty"},
    {"project.created", "audio_files_storage_path", "\"../etc/passwd\"", PRIME_ERR_INVALID, "relative path"},
    {"project.created", "audio_files_storage_path", "\"/abs/path\"", PRIME_ERR_INVALID, "relative path"},
    {"project.created", "audio_files_storage_path", "\"a//b\"", PRIME_ERR_INVALID, "relative path"},
    {"project.created", "audio_files_storage_path", "\"projects/p1/audio\"", PRIME_OK, NULL},
    {"project.created", "tags", "[\"a\", 3]", PRIME_ERR_INVALID, "item 1: expected a string"},
    {"project.created", "tags", "[\"a\", \"\"]", PRIME_ERR_INVALID, "must not be empty"},
    {"project.created", "tags", NULL, PRIME_OK, NULL},
    {"project.created", "colour", "\"blue\"", PRIME_ERR_INVALID, "unknown field for project.created"},
    {"project.created", "occurred_at", "0", PRIME_ERR_INVALID, "between 2000 and 2100"},
    {"project.created", "occurred_at", "\"2026-02-30T00:00:00Z\"", PRIME_ERR_INVALID, "RFC 3339"},
    {"project.created", "occurred_at", "\"2026-11-25 17:00:00+01:00\"", PRIME_OK, NULL},
    {"project.created", "occurred_at", "1795608000000000", PRIME_OK, NULL},
    {"project.created", "event_type", "\"project.saved\"", PRIME_ERR_INVALID, "expected 'project.created'"},
    {"project.saved", "base_version", "0", PRIME_ERR_INVALID, ">= 1"},
    {"project.saved", "base_version", "4294967296", PRIME_ERR_INVALID, "32-bit range"},
    {"project.collaborators_changed", "collaborators", "{}", PRIME_ERR_INVALID, "expected a JSON array"},
    {"project.metadata_updated", "cleared_fields", "[\"name\"]", PRIME_ERR_INVALID, "expected one of"},
    {"project.metadata_updated", "cleared_fields", "[\"bpm\",\"mood\"]", PRIME_OK, NULL},
    {"user.registered", "email", "\"nope\"", PRIME_ERR_INVALID, "email address"},
    {"user.registered", "email", "\"a@b\"", PRIME_ERR_INVALID, "email address"},
    {"user.registered", "username", "\"ab\"", PRIME_ERR_INVALID, "3 to 32"},
    {"user.registered", "username", "\"dj khaled\"", PRIME_ERR_INVALID, "3 to 32"},
    {"user.registered", "avatar_url", "\"ftp://x\"", PRIME_ERR_INVALID, "URL"},
    {"user.registered", "default_bpm", "140.5", PRIME_ERR_INVALID, "expected an integer"},
    {"auth.credential_created", "password_hash", "\"hunter2\"", PRIME_ERR_INVALID, "looks like plaintext"},
    {"auth.credential_created", "password_hash",
     "\"$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234\"", PRIME_OK, NULL},
    {"auth.credential_created", "password_hash",
     "\"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"", PRIME_OK, NULL},
    {"auth.credential_created", "password", "\"hunter2\"", PRIME_ERR_INVALID, "plaintext secrets are refused"},
    {"auth.credential_created", "credential_type", "\"magic\"", PRIME_ERR_INVALID, "email_password"},
    {"auth.credential_created", "credential_type", "\"oauth_github\"", PRIME_OK, NULL},
    {"auth.session_started", "refresh_token", "\"abc\"", PRIME_ERR_INVALID, "plaintext secrets are refused"},
    {"auth.session_started", "device_id", "null", PRIME_ERR_INVALID, "needs the device_id"},
    {"auth.session_started", "ip_address", "\"999.1.1.1\"", PRIME_ERR_INVALID, "IPv4 or IPv6"},
    {"auth.session_started", "ip_address", "\"2001:db8::1\"", PRIME_OK, NULL},
    {"auth.session_started", "ip_address", "\"10.0.0.0/8\"", PRIME_OK, NULL},
    {"auth.session_started", "device_type", "\"fridge\"", PRIME_ERR_INVALID, "desktop, web, mobile"},
    {"audio.file_uploaded", "file_size_bytes", "-1", PRIME_ERR_INVALID, ">= 0"},
    {"audio.file_uploaded", "channels", "0", PRIME_ERR_INVALID, "1 to 64 channels"},
    {"audio.file_uploaded", "format", "\"exe\"", PRIME_ERR_INVALID, "audio format"},
    {"audio.file_uploaded", "mime_type", "\"wav\"", PRIME_ERR_INVALID, "MIME type"},
    {"audio.file_uploaded", "is_mix", "1", PRIME_ERR_INVALID, "true or false"},
    {"recall.set", "confidence", "1.5", PRIME_ERR_INVALID, "confidence from 0 to 1"},
    {"recall.set", "data", "\"[]\"", PRIME_ERR_INVALID, "expected a JSON object"},
    {"session.joined", "cursor_position", "-0.5", PRIME_ERR_INVALID, ">= 0"},
    {"audio.analysis_failed", "reason", "\"bad\"", PRIME_ERR_INVALID, "expected one of: missing"},
};

static void test_rules(void)
{
    for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
        const struct rule_case *c = &rule_cases[i];
        prime_error_t err;
        prime_errcode_t rc = try_json(c->type, c->field, c->value, &err);
        if (rc != c->want || (c->message_part && !strstr(err.message, c->message_part)) ||
            (rc && strncmp(err.field, c->field, strlen(c->field))))
            fprintf(stderr, "case %zu (%s.%s = %s): got %s '%s: %s'\n", i, c->type, c->field,
                    c->value ? c->value : "(removed)", prime_errcode_name(rc), err.field, err.message);
        CU_ASSERT_EQUAL(rc, c->want);
        if (c->want != PRIME_OK) {
            CU_ASSERT_PTR_NOT_NULL(strstr(err.message, c->message_part));
            /* The error names the field, or an item of it ("tags[1]"). */
            CU_ASSERT_NSTRING_EQUAL(err.field, c->field, strlen(c->field));
            CU_ASSERT(err.field[strlen(c->field)] == '\0' || err.field[strlen(c->field)] == '[');
        }
    }
}

static void test_json_input_errors(void)
{
    static const struct {
        const char *text;
        prime_errcode_t want;
        const char *field, *message_part;
    } cases[] = {
        {"not json", PRIME_ERR_JSON, "", "invalid JSON at column"},
        {"[1]", PRIME_ERR_JSON, "", "expected a JSON object, got an array"},
        {"{\"type\":\"nope.x\"}", PRIME_ERR_UNKNOWN_TYPE, "type", "unknown event type 'nope.x'"},
        {"{\"project_id\":\"x\"}", PRIME_ERR_INVALID, "type", "expected the event type"},
        {"{\"type\":\"project.opened\",\"type\":\"project.opened\"}", PRIME_ERR_JSON, "", "duplicate member 'type'"},
        {"{\"type\":\"project.opened\",\"project_id\":\"a\",\"project_id\":\"b\"}", PRIME_ERR_JSON, "",
         "duplicate member 'project_id'"},
        {"{\"type\":\"project.opened\"} {}", PRIME_ERR_JSON, "", "invalid JSON at column 27"},
        {"{\"type\":", PRIME_ERR_JSON, "", "invalid JSON at column 8"},
        /* event_id and occurred_at may be omitted: the producer generates them. */
        {"{\"type\":\"project.opened\"}", PRIME_ERR_INVALID, "actor_user_id", "required field is missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        prime_error_t err;
        prime_event_t *ev = NULL;
        prime_errcode_t rc;
        prime_error_clear(&err);
        rc = prime_event_from_json(reg, cases[i].text, strlen(cases[i].text), &ev, &err);
        if (rc != cases[i].want || !strstr(err.message, cases[i].message_part))
            fprintf(stderr, "json case %zu: got %s '%s: %s'\n", i, prime_errcode_name(rc), err.field, err.message);
        CU_ASSERT_EQUAL(rc, cases[i].want);
        CU_ASSERT_PTR_NULL(ev);
        CU_ASSERT_STRING_EQUAL(err.field, cases[i].field);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, cases[i].message_part));
    }
}

/* Input that is not NUL-terminated and breaks off near its end: the error
 * message must quote only bytes of the input (found by fuzz_json; the
 * sanitizer build catches a read past the buffer). */
static void test_unterminated_input_error(void)
{
    static const char *const inputs[] = {"{\"type\":\"project.opened\",\"x\":tru", "[1,", "{\"a\" 1}", "{", "x"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t len = strlen(inputs[i]);
        char *exact = malloc(len); /* no terminator */
        prime_event_t *ev = NULL;
        prime_error_t err;
        memcpy(exact, inputs[i], len);
        prime_error_clear(&err);
        CU_ASSERT_EQUAL(prime_event_from_json(reg, exact, len, &ev, &err), PRIME_ERR_JSON);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "invalid JSON"));
        free(exact);
    }
}

/* Bytes JSON cannot carry: set directly, refused by validation. */
static void test_bad_text_bytes(void)
{
    prime_event_t *ev = prime_event_example(reg, "user.registered", 0, NULL);
    prime_error_t err;

    CU_ASSERT_EQUAL(prime_event_set_string(ev, "display_name", "ok\xff", 3, NULL), PRIME_OK);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.field, "display_name");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "UTF-8"));
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "display_name", "a\0b", 3, NULL), PRIME_OK);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_ERR_INVALID);
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "display_name", "Zo\xc3\xab \xe2\x99\xab", 8, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_event_validate(ev, NULL), PRIME_OK);
    prime_event_free(ev);
}

/* A JSON-valued member given as an object is checked once, at parse time;
 * invalid UTF-8 inside it must still be refused. */
static void test_bad_bytes_inside_a_json_member(void)
{
    static const char line[] = "{\"type\":\"recall.set\",\"event_id\":\"8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e\","
                               "\"occurred_at\":1795608000000000,\"actor_user_id\":\"8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e\","
                               "\"owner_user_id\":\"8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e\",\"category\":\"plugin\","
                               "\"recall_key\":\"MixxDrive\",\"data\":{\"name\":\"bad \xff byte\",\"n\":{\"a\":1,\"a\":2}}}";
    prime_event_t *ev = NULL;
    prime_error_t err;

    prime_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(prime_event_from_json(reg, line, sizeof(line) - 1, &ev, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.field, "data");
    /* Fix the bytes: the nested duplicate member is still found. */
    prime_event_free(ev);
    {
        char fixed[sizeof(line)];
        memcpy(fixed, line, sizeof(line));
        *strchr(fixed, '\xff') = 'X';
        prime_error_clear(&err);
        CU_ASSERT_EQUAL_FATAL(prime_event_from_json(reg, fixed, sizeof(fixed) - 1, &ev, &err), PRIME_OK);
        CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_ERR_INVALID);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "duplicate member 'a'"));
        /* Replacing the value through a setter drops the parse-time check. */
        CU_ASSERT_EQUAL(prime_event_set_string(ev, "data", "{\"ok\":1}", 8, NULL), PRIME_OK);
        CU_ASSERT_EQUAL(prime_event_validate(ev, NULL), PRIME_OK);
        CU_ASSERT_EQUAL(prime_event_set_string(ev, "data", "[1]", 3, NULL), PRIME_OK);
        prime_error_clear(&err);
        CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_ERR_INVALID);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "expected a JSON object"));
    }
    prime_event_free(ev);
}

/* The seed-0 example of type as a JSON line with member field written as
 * raw (text kept as given, which jansson would re-encode), NUL-terminated
 * and *line_len bytes long (raw may hold a NUL). Malloc'ed. */
static char *line_with(const char *type, const char *field, const char *raw, size_t raw_len, size_t *line_len)
{
    prime_event_t *ev = prime_event_example(reg, type, 0, NULL);
    char *text = prime_event_to_json(ev, NULL), *base, *line;
    json_t *obj = json_loads(text, 0, NULL);
    size_t n;

    json_object_del(obj, field);
    base = json_dumps(obj, JSON_COMPACT);
    n = strlen(base) - 1; /* without the closing brace */
    line = malloc(n + strlen(field) + raw_len + 8);
    memcpy(line, base, n);
    n += (size_t)sprintf(line + n, ",\"%s\":", field);
    memcpy(line + n, raw, raw_len);
    memcpy(line + n + raw_len, "}", 2);
    *line_len = n + raw_len + 1;
    free(text);
    free(base);
    json_decref(obj);
    prime_event_free(ev);
    return line;
}

/* A JSON document is stored as the client wrote it: cJSON's tree would
 * round 9007199254740993 and 1234567890123456789 to 15 digits and print
 * 1e400 as null. */
static void test_json_document_kept_byte_for_byte(void)
{
    static const char *const docs[] = {
        "{\"n\":9007199254740993,\"m\":1234567890123456789,\"big\":1e400}",
        "{ \"x\" : [ 0.1000000000000000055511151231257827, -0, 1E+2, 1e131071, 1e-16383 ] ,\t\"s\":\"\\u00e9\\ud834\\udd1e\" }",
        "{\"tiny\":0.000001e-16377,\"zero\":0e99999}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        size_t line_len, len;
        char *line = line_with("project.created", "project_data", docs[i], strlen(docs[i]), &line_len), *out;
        prime_event_t *ev = NULL, *back = NULL;
        prime_error_t err;
        void *bytes;

        prime_error_clear(&err);
        CU_ASSERT_EQUAL_FATAL(prime_event_from_json(reg, line, line_len, &ev, &err), PRIME_OK);
        CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_OK);
        if (err.code)
            fprintf(stderr, "doc %zu: %s: %s\n", i, err.field, err.message);
        CU_ASSERT_STRING_EQUAL(prime_event_string(ev, "project_data"), docs[i]);
        /* Through the codec and the JSON form, still the same text. */
        CU_ASSERT_EQUAL_FATAL(prime_event_encode(ev, &bytes, &len, NULL), PRIME_OK);
        CU_ASSERT_EQUAL_FATAL(prime_event_decode(reg, bytes, len, &back, NULL), PRIME_OK);
        CU_ASSERT_STRING_EQUAL(prime_event_string(back, "project_data"), docs[i]);
        out = prime_event_to_json(back, NULL);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, docs[i]));
        free(out);
        free(bytes);
        free(line);
        prime_event_free(ev);
        prime_event_free(back);
    }
}

/* What jsonb refuses is refused at publish, naming the value's path; a
 * string is never cut at \u0000, be it a value, an item or a member name. */
static void test_json_refused_as_jsonb_refuses(void)
{
    static const struct {
        const char *type, *field, *raw, *want_field, *message_part;
    } cases[] = {
        {"project.created", "project_data", "{\"active_tool\":\"pen\\u0000 x\"}", "project_data.active_tool", "\\u0000"},
        {"project.created", "project_data", "{\"tracks\":[\"a\",\"b\\u0000\"]}", "project_data.tracks[1]", "\\u0000"},
        {"project.created", "project_data", "{\"active_tool\\u0000 x\":\"pen\"}", "project_data", "\\u0000"},
        {"project.created", "project_data", "{\"a\":{\"b\":[1,{\"c\":\"\\u0000\"}]}}", "project_data.a.b[1].c", "NUL"},
        {"project.created", "project_data", "{\"gain\":01}", "project_data.gain", "leading zero"},
        {"project.created", "project_data", "{\"gain\":-00.5}", "project_data.gain", "leading zero"},
        {"project.created", "project_data", "{\"gain\":1.}", "project_data.gain", "digit after the '.'"},
        {"project.created", "project_data", "{\"gain\":-.5}", "project_data.gain", "needs a digit"},
        {"project.created", "project_data", "{\"big\":1e131072}", "project_data.big", "out of PostgreSQL's numeric range"},
        {"project.created", "project_data", "{\"big\":0.5e131073}", "project_data.big", "numeric range"},
        {"project.created", "project_data", "{\"small\":1e-16384}", "project_data.small", "numeric range"},
        {"project.created", "project_data", "{\"small\":1.5e-16383}", "project_data.small", "numeric range"},
        {"project.created", "project_data", "{\"zero\":0e-1073741823}", "project_data.zero", "numeric range"},
        {"project.created", "project_data", "{\"e\":1e99999999999999999999}", "project_data.e", "numeric range"},
        {"project.created", "project_data", "{\"s\":\"tab\there\"}", "project_data.s", "control character"},
        {"project.created", "project_data", "{\"s\":\"\\uZZZZ\"}", "project_data.s", "four hex digits"},
        {"project.created", "project_data", "{\"s\":\f1}", "project_data.s", "control character 0x0c"},
        {"project.created", "name", "\"Song\\u0000 (draft)\"", "name", "\\u0000"},
        {"project.created", "tags", "[\"ok\",\"cut\\u0000here\"]", "tags[1]", "\\u0000"},
        {"project.created", "bpm", "0120", "bpm", "leading zero"},
        /* A document given as a string holding JSON: checked by validation. */
        {"project.created", "project_data", "\"{\\\"active_tool\\\":\\\"\\\\u0000\\\"}\"", "project_data.active_tool", "NUL"},
        {"project.created", "project_data", "\"{\\\"n\\\":012}\"", "project_data.n", "leading zero"},
        {"recall.set", "data", "\"{\\\"n\\\":1e131072}\"", "data.n", "numeric range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *line = line_with(cases[i].type, cases[i].field, cases[i].raw, strlen(cases[i].raw), &len);
        prime_event_t *ev = NULL;
        prime_error_t err;
        prime_errcode_t rc;

        prime_error_clear(&err);
        rc = prime_event_from_json(reg, line, len, &ev, &err);
        if (!rc)
            rc = prime_event_validate(ev, &err);
        CU_ASSERT_EQUAL(rc, PRIME_ERR_INVALID);
        if (rc != PRIME_ERR_INVALID || strcmp(err.field, cases[i].want_field) ||
            !strstr(err.message, cases[i].message_part))
            fprintf(stderr, "case %zu (%s): got %s '%s: %s'\n", i, cases[i].raw, prime_errcode_name(rc), err.field,
                    err.message);
        CU_ASSERT_STRING_EQUAL(err.field, cases[i].want_field);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, cases[i].message_part));
        prime_event_free(ev);
        free(line);
    }
}

/* Raw bytes cJSON takes and JSON does not: a NUL inside a string (cJSON
 * would cut the value there) and control bytes between tokens. */
static void test_raw_control_bytes_refused(void)
{
    static const struct {
        const char *raw;
        size_t len;
        const char *field, *want_field;
    } cases[] = {
        {"\"Song\0 (draft)\"", 15, "name", "name"},
        {"{\"tool\":\"pen\0x\"}", 16, "project_data", "project_data.tool"},
        {"{\"tool\":\0\"pen\"}", 15, "project_data", "project_data.tool"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *line = line_with("project.created", cases[i].field, cases[i].raw, cases[i].len, &len);
        prime_event_t *ev = NULL;
        prime_error_t err;

        prime_error_clear(&err);
        CU_ASSERT_EQUAL(prime_event_from_json(reg, line, len, &ev, &err), PRIME_ERR_INVALID);
        CU_ASSERT_STRING_EQUAL(err.field, cases[i].want_field);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "control character"));
        prime_event_free(ev);
        free(line);
    }
}

/* The materializer edits stored documents through prime_json_parse():
 * printed again, every number is as it was written. */
static void test_json_parse_keeps_numbers(void)
{
    static const char doc[] = "{\"n\":9007199254740993,\"a\":[1e400,{\"m\":-1234567890123456789.5e-3}],\"s\":\"x\",\"t\":true}";
    cJSON *tree = prime_json_parse(doc);
    char *printed;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tree);
    printed = cJSON_PrintUnformatted(tree);
    CU_ASSERT_STRING_EQUAL(printed, doc);
    cJSON_free(printed);
    cJSON_Delete(tree);
    CU_ASSERT_PTR_NULL(prime_json_parse("{\"a\\u0000b\":1}"));
    CU_ASSERT_PTR_NULL(prime_json_parse("[01]"));
    CU_ASSERT_PTR_NULL(prime_json_parse("[1] x"));
    CU_ASSERT_PTR_NULL(prime_json_parse(NULL));
}

/* A document is held to max_json_bytes as PostgreSQL prints it, every
 * digit written out: "1e131071" is 8 bytes in the event and 131,072 in
 * every read (the sizes below are checked against PostgreSQL in
 * test_json_fidelity). */
static void test_json_printed_size_limited(void)
{
    static const struct {
        const char *raw;
        prime_errcode_t want;
    } cases[] = {
        {"[1e997]", PRIME_OK},                  /* prints as 1000 bytes */
        {"[1e998]", PRIME_ERR_TOO_LARGE},       /* 1001 */
        {"[-1e-995]", PRIME_OK},                /* -0.000...1: 1000 */
        {"[-1e-996]", PRIME_ERR_TOO_LARGE},
        {"\"[1e998]\"", PRIME_ERR_TOO_LARGE},   /* as a string holding JSON: at validation */
        {"[1.5e2,2.50,0.0]", PRIME_OK},
    };
    prime_limits_t saved = *prime_registry_limits(reg), small = saved;

    small.max_json_bytes = 1000;
    prime_registry_set_limits(reg, &small);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *line = line_with("project.collaborators_changed", "collaborators", cases[i].raw, strlen(cases[i].raw), &len);
        prime_event_t *ev = NULL;
        prime_error_t err;
        prime_errcode_t rc;

        prime_error_clear(&err);
        rc = prime_event_from_json(reg, line, len, &ev, &err);
        if (!rc)
            rc = prime_event_validate(ev, &err);
        CU_ASSERT_EQUAL(rc, cases[i].want);
        if (rc != cases[i].want)
            fprintf(stderr, "case %s: got %s '%s: %s'\n", cases[i].raw, prime_errcode_name(rc), err.field, err.message);
        if (cases[i].want) {
            CU_ASSERT_STRING_EQUAL(err.field, "collaborators");
            CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "as PostgreSQL prints it"));
        }
        prime_event_free(ev);
        free(line);
    }
    prime_registry_set_limits(reg, &saved);
}

static void test_setters_check_names_and_kinds(void)
{
    prime_event_t *ev = prime_event_new(reg, "project.saved", NULL);
    prime_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_set_int(ev, "nope", 1, &err), PRIME_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(err.field, "nope");
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "base_version", "1", 1, &err), PRIME_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "field is a int, not a string"));
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_set_null(ev, "project_id", &err), PRIME_ERR_INVALID);
    /* A fresh event is not valid until its required fields are set. */
    prime_error_clear(&err);
    CU_ASSERT_NOT_EQUAL(prime_event_validate(ev, &err), PRIME_OK);
    CU_ASSERT_STRING_EQUAL(err.field, "event_id");
    prime_event_free(ev);
}

/* The private time helpers, through their effect on JSON. */
static void test_timestamps(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"2024-02-29T23:59:59Z", "2024-02-29T23:59:59.000000Z"},
        {"2026-11-25T16:44:33.5Z", "2026-11-25T16:44:33.500000Z"},
        {"2026-11-25T16:44:33.123456000Z", "2026-11-25T16:44:33.123456Z"},
        {"2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000000Z"},
        {"2026-01-01t00:00:00-00:30", "2026-01-01T00:30:00.000000Z"},
        {"2000-01-01T00:00:00Z", "2000-01-01T00:00:00.000000Z"},
    };
    static const char *const bad[] = {"2026-11-25T16:44:33.1234567Z", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                                      "2026-11-25T24:00:00Z", "2026-11-25T16:44:33", "2026-11-25", "", "2026-11-25T16:44:33Zjunk"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[256], *out;
        prime_event_t *ev = prime_event_example(reg, "project.opened", 0, NULL), *back = NULL;
        char *text = prime_event_to_json(ev, NULL);
        json_t *obj = json_loads(text, 0, NULL);
        json_object_set_new(obj, "occurred_at", json_string(cases[i].in));
        free(text);
        text = json_dumps(obj, JSON_COMPACT);
        CU_ASSERT_EQUAL_FATAL(prime_event_from_json(reg, text, strlen(text), &back, NULL), PRIME_OK);
        out = prime_event_to_json(back, NULL);
        snprintf(json, sizeof(json), "\"occurred_at\":\"%s\"", cases[i].out);
        if (!strstr(out, json))
            fprintf(stderr, "%s -> %s\n", cases[i].in, out);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, json));
        free(out);
        free(text);
        json_decref(obj);
        prime_event_free(ev);
        prime_event_free(back);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char value[128];
        prime_error_t err;
        snprintf(value, sizeof(value), "\"%s\"", bad[i]);
        CU_ASSERT_EQUAL(try_json("project.opened", "occurred_at", value, &err), PRIME_ERR_INVALID);
        CU_ASSERT_STRING_EQUAL(err.field, "occurred_at");
    }
}

static void test_every_example_is_valid(void)
{
    for (size_t i = 0; i < prime_registry_count(reg); i++) {
        const char *name = prime_event_type_name(prime_registry_at(reg, i));
        for (uint64_t seed = 0; seed < 200; seed++) {
            prime_error_t err;
            prime_event_t *ev = prime_event_example(reg, name, seed, NULL);
            prime_error_clear(&err);
            CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_OK);
            if (err.code)
                fprintf(stderr, "%s seed %llu: %s: %s\n", name, (unsigned long long)seed, err.field, err.message);
            prime_event_free(ev);
        }
    }
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"each value rule refuses and accepts what it should", test_rules},
        {"JSON input errors name what is wrong", test_json_input_errors},
        {"invalid UTF-8 and NUL bytes are refused", test_bad_text_bytes},
        {"errors on unterminated input quote only the input", test_unterminated_input_error},
        {"setters check field names and kinds", test_setters_check_names_and_kinds},
        {"a JSON member's bytes and members are checked once", test_bad_bytes_inside_a_json_member},
        {"RFC 3339 timestamps parse and print", test_timestamps},
        {"a JSON document is kept byte for byte", test_json_document_kept_byte_for_byte},
        {"what jsonb refuses is refused, with its path", test_json_refused_as_jsonb_refuses},
        {"raw NUL and control bytes are refused", test_raw_control_bytes_refused},
        {"prime_json_parse keeps numbers as written", test_json_parse_keeps_numbers},
        {"a document's size counts its numbers as printed", test_json_printed_size_limited},
        {"every generated example is valid", test_every_example_is_valid},
        {NULL, NULL},
    };
    return prime_test_run("validate", suite_init, suite_cleanup, tests);
}
