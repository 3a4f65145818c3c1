#include "schemas_int.h"
#include "prime/fingerprint.h"

#include <stdio.h>
#include <string.h>

/* splitmix64: a fixed, portable sequence, so that examples are the same on
 * every machine and in every run. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void example_uuid(uint64_t r, char out[37])
{
    uint64_t hi = mix(r), lo = mix(r ^ 0xabcdefULL);
    /* Version 4 and RFC 4122 variant bits, as a random UUID would have. */
    hi = (hi & ~0xf000ULL) | 0x4000ULL;
    lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48);
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xffff,
             (unsigned)hi & 0xffff, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

static const char *pick(const char *const *list, size_t n, uint64_t r)
{
    return list[r % n];
}

#define PICK(list, r) pick(list, sizeof(list) / sizeof(list[0]), r)

static const char *const keys[] = {"C", "F#m", "Bb", "Ebmaj", "A minor", "G#"};
static const char *const signatures[] = {"4/4", "3/4", "6/8", "7/8", "5/4"};
static const int rates[] = {44100, 48000, 96000, 88200, 192000};
static const int depths[] = {24, 16, 32};

/* A text value that satisfies the field's rule. */
static void example_text(const prime_event_type_t *t, const field_desc_t *f, uint64_t r, char *out, size_t size)
{
    unsigned n = (unsigned)(r % 10000);

    if (f->one_of) {
        snprintf(out, size, "%s", json_string_value(json_array_get(f->one_of, r % json_array_size(f->one_of))));
        return;
    }
    switch (f->check) {
    case CHECK_UUID: example_uuid(r, out); return;
    case CHECK_EVENT_TYPE: snprintf(out, size, "%s", t->name); return;
    case CHECK_EMAIL: snprintf(out, size, "artist%u@example.com", n); return;
    case CHECK_USERNAME: snprintf(out, size, "artist_%u", n); return;
    case CHECK_URL: snprintf(out, size, "https://cdn.example.com/avatars/%u.png", n); return;
    case CHECK_MUSICAL_KEY: snprintf(out, size, "%s", PICK(keys, r)); return;
    case CHECK_TIME_SIGNATURE: snprintf(out, size, "%s", PICK(signatures, r)); return;
    case CHECK_JSON:
    case CHECK_JSON_OBJECT:
        snprintf(out, size, "{\"tracks\":[{\"name\":\"Lead Vox %u\",\"gain_db\":-3.5,\"muted\":false}],\"tempo_map\":[%u]}",
                 n, 60 + n % 120);
        return;
    case CHECK_JSON_ARRAY: {
        char id[37];
        example_uuid(r ^ 1, id);
        snprintf(out, size, "[{\"user_id\":\"%s\",\"role\":\"editor\",\"permissions\":[\"edit\"]}]", id);
        return;
    }
    case CHECK_SECRET_HASH:
        snprintf(out, size, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdC0%04u$%016llx%016llx", n,
                 (unsigned long long)mix(r), (unsigned long long)mix(r + 1));
        return;
    case CHECK_INET: snprintf(out, size, "192.0.2.%u", n % 254 + 1); return;
    case CHECK_STORAGE_PATH: snprintf(out, size, "users/%u/audio/take-%u.wav", n % 97, n); return;
    case CHECK_MIME_TYPE: snprintf(out, size, "audio/wav"); return;
    case CHECK_AUDIO_FORMAT: snprintf(out, size, "wav"); return;
    case CHECK_CREDENTIAL_TYPE: snprintf(out, size, "email_password"); return;
    default: snprintf(out, size, "%s %u", f->name, n); return;
    }
}

static double example_number(const field_desc_t *f, uint64_t r)
{
    unsigned n = (unsigned)(r % 1000);

    switch (f->check) {
    case CHECK_BPM: return f->kind == KIND_DOUBLE ? 60 + n % 120 + 0.5 : 60 + n % 120;
    case CHECK_LUFS: case CHECK_MEASURED_LUFS: return -8.0 - (double)(n % 20);
    case CHECK_SAMPLE_RATE: case CHECK_MEASURED_SAMPLE_RATE: return rates[r % 5];
    case CHECK_MEASURED_DR: return 4 + n % 12;
    case CHECK_BIT_DEPTH: return depths[r % 3];
    case CHECK_CHANNELS: return 1 + n % 2;
    case CHECK_POSITIVE: return 1 + n % 50;
    case CHECK_CONFIDENCE: return (double)(n % 101) / 100.0;
    default: return f->kind == KIND_DOUBLE ? n + 0.25 : n;
    }
}

prime_event_t *prime_event_example(const prime_registry_t *reg, const char *type, uint64_t seed, prime_error_t *err)
{
    prime_event_t *ev = prime_event_new(reg, type, err);
    char text[1024];
    uint64_t type_salt;

    if (!ev)
        return NULL;
    /* Distinct types must not share ids (event_id is the idempotency key). */
    type_salt = prime_avro_crc64(type, strlen(type));
    for (size_t i = 0; i < ev->type->nfields; i++) {
        const field_desc_t *f = &ev->type->fields[i];
        uint64_t r = mix((seed * 131 + i) ^ type_salt);
        prime_errcode_t rc = PRIME_OK;

        bool required = i == 5 && ev->type->requires_device_id;
        if (f->nullable && !required && seed && (mix(r) & 3) == 0)
            continue; /* a quarter of optional values stay null */
        switch (f->kind) {
        case KIND_STRING:
            example_text(ev->type, f, r, text, sizeof(text));
            rc = prime_event_set_string(ev, f->name, text, strlen(text), err);
            break;
        case KIND_STRING_ARRAY:
            for (uint64_t k = 0; k < (seed ? r % 4 : 2) && !rc; k++) {
                if (f->one_of)
                    example_text(ev->type, f, r + k, text, sizeof(text));
                else
                    snprintf(text, sizeof(text), "tag-%llu", (unsigned long long)((r + k) % 1000));
                rc = prime_event_append_string(ev, f->name, text, strlen(text), err);
            }
            break;
        case KIND_INT: rc = prime_event_set_int(ev, f->name, (int32_t)example_number(f, r), err); break;
        case KIND_LONG:
            /* 2026-11-25T12:00:00Z plus a seed-dependent number of seconds. */
            rc = prime_event_set_long(ev, f->name,
                                      f->timestamp ? 1795608000000000LL + (int64_t)(r % 86400) * 1000000
                                                   : (int64_t)example_number(f, r),
                                      err);
            break;
        case KIND_DOUBLE: rc = prime_event_set_double(ev, f->name, example_number(f, r), err); break;
        case KIND_BOOLEAN: rc = prime_event_set_bool(ev, f->name, seed ? (r & 1) : i & 1, err); break;
        }
        if (rc) {
            prime_event_free(ev);
            return NULL;
        }
    }
    return ev;
}
