/* prime-recall's context without servers (workers/recall/context.c,
 * signals.c): what a user's own events teach, in their order; what they
 * forget; what another user's events or an editor cannot change; and the
 * signals a save gets from the context as it stood then. */
#include "context.h"
#include "signals.h"

#include <stdio.h>
#include <string.h>

#include "prime/registry.h"

#include "../support/prime_test.h"

#define NOVA "11111111-1111-4111-8111-111111111111"
#define ECHO "22222222-2222-4222-8222-222222222222"
#define PROJECT "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define PRESET "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
#define FILE_ID "f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1"

static prime_registry_t *reg;
static int serial;

static int setup(void)
{
    prime_error_t err;
    return (reg = prime_registry_new(&err)) ? 0 : 1;
}

static int teardown(void)
{
    prime_registry_free(reg);
    return 0;
}

/* An event of type by actor for owner, with the given JSON fields. */
static prime_event_t *event(const char *type, const char *actor, const char *owner, const char *fields)
{
    char text[2048];
    prime_event_t *ev = NULL;
    prime_error_t err;
    int len = snprintf(text, sizeof(text),
                       "{\"type\":\"%s\",\"event_id\":\"00000000-0000-4000-8000-%012d\",\"occurred_at\":"
                       "\"2026-11-25T10:00:00Z\",\"actor_user_id\":\"%s\",\"owner_user_id\":\"%s\",%s}",
                       type, ++serial, actor, owner, fields);
    if (prime_event_from_json(reg, text, (size_t)len, &ev, &err))
        fprintf(stderr, "%s: %s\n", type, err.message);
    CU_ASSERT_FATAL(ev != NULL);
    return ev;
}

/* Learns one event and frees it. */
static void learn(recall_context_t *c, const char *type, const char *actor, const char *owner, const char *fields)
{
    prime_event_t *ev = event(type, actor, owner, fields);
    CU_ASSERT(recall_context_learn(c, ev));
    prime_event_free(ev);
}

static const char *text(const cJSON *facts, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(facts, name));
}

static void test_project_in_order(void)
{
    recall_context_t *c = recall_context_new(16);
    const cJSON *f;

    learn(c, "project.created", NOVA, NOVA,
          "\"project_id\":\"" PROJECT "\",\"name\":\"P\",\"project_data\":{},\"genre\":\"lofi\",\"bpm\":80,\"key\":\"Am\"");
    f = recall_context_get(c, NOVA, CONTEXT_PROJECT, PROJECT);
    CU_ASSERT_STRING_EQUAL(text(f, "genre"), "lofi");
    CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(f, "bpm")->valuedouble, 80);
    /* an edit: the given field changes, a cleared one goes, the rest stay */
    learn(c, "project.metadata_updated", NOVA, NOVA,
          "\"project_id\":\"" PROJECT "\",\"genre\":\"jazz\",\"cleared_fields\":[\"bpm\"]");
    f = recall_context_get(c, NOVA, CONTEXT_PROJECT, PROJECT);
    CU_ASSERT_STRING_EQUAL(text(f, "genre"), "jazz");
    CU_ASSERT_STRING_EQUAL(text(f, "key"), "Am");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(f, "bpm"));
    /* an upper-case spelling of the ids is the same project */
    CU_ASSERT_PTR_NOT_NULL(recall_context_get(c, "11111111-1111-4111-8111-111111111111", CONTEXT_PROJECT,
                                              "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA"));
    learn(c, "project.deleted", NOVA, NOVA, "\"project_id\":\"" PROJECT "\"");
    CU_ASSERT_PTR_NULL(recall_context_get(c, NOVA, CONTEXT_PROJECT, PROJECT));
    recall_context_free(c);
}

static void test_only_the_owner_teaches(void)
{
    recall_context_t *c = recall_context_new(16);

    learn(c, "project.created", NOVA, NOVA,
          "\"project_id\":\"" PROJECT "\",\"name\":\"P\",\"project_data\":{},\"genre\":\"lofi\"");
    /* Echo names herself the actor of Nova's edit and delete: refused by
     * the materializer, ignored here. */
    learn(c, "project.metadata_updated", ECHO, NOVA, "\"project_id\":\"" PROJECT "\",\"genre\":\"polka\"");
    learn(c, "project.deleted", ECHO, NOVA, "\"project_id\":\"" PROJECT "\"");
    CU_ASSERT_STRING_EQUAL(text(recall_context_get(c, NOVA, CONTEXT_PROJECT, PROJECT), "genre"), "lofi");
    /* Echo's own project of the same id is hers, apart from Nova's. */
    learn(c, "project.created", ECHO, ECHO,
          "\"project_id\":\"" PROJECT "\",\"name\":\"P\",\"project_data\":{},\"genre\":\"polka\"");
    CU_ASSERT_STRING_EQUAL(text(recall_context_get(c, NOVA, CONTEXT_PROJECT, PROJECT), "genre"), "lofi");
    CU_ASSERT_STRING_EQUAL(text(recall_context_get(c, ECHO, CONTEXT_PROJECT, PROJECT), "genre"), "polka");
    learn(c, "user.deleted", ECHO, ECHO, "\"reason\":null");
    CU_ASSERT_PTR_NULL(recall_context_get(c, ECHO, CONTEXT_PROJECT, PROJECT));
    CU_ASSERT_PTR_NOT_NULL(recall_context_get(c, NOVA, CONTEXT_PROJECT, PROJECT));
    recall_context_free(c);
}

static void test_presets_and_files(void)
{
    recall_context_t *c = recall_context_new(16);
    const cJSON *f;

    learn(c, "preset.created", ECHO, ECHO,
          "\"preset_id\":\"" PRESET "\",\"name\":\"Hall\",\"plugin_type\":\"MixxVerb\",\"parameters\":{\"size\":0.5},"
          "\"is_public\":false,\"is_system_preset\":false,\"tags\":[]");
    CU_ASSERT_PTR_NULL(recall_context_shared_preset(c, PRESET)); /* private */
    learn(c, "preset.updated", ECHO, ECHO, "\"preset_id\":\"" PRESET "\",\"parameters\":{\"size\":0.9},\"is_public\":true");
    f = recall_context_get(c, ECHO, CONTEXT_PRESET, PRESET);
    CU_ASSERT_STRING_EQUAL(text(f, "plugin"), "MixxVerb");
    CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f, "parameters"), "size")->valuedouble,
                    0.9);
    CU_ASSERT_PTR_EQUAL(recall_context_shared_preset(c, PRESET), f); /* public now */
    learn(c, "audio.file_uploaded", NOVA, NOVA,
          "\"file_id\":\"" FILE_ID "\",\"filename\":\"mix.wav\",\"file_path\":\"u/mix.wav\",\"file_size_bytes\":44,"
          "\"mime_type\":\"audio/wav\",\"duration_seconds\":1.0,\"sample_rate\":44100,\"bit_depth\":16,\"channels\":2,"
          "\"format\":\"wav\",\"tags\":[],\"is_mix\":true");
    CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(recall_context_get(c, NOVA, CONTEXT_FILE, FILE_ID), "is_mix")));
    learn(c, "audio.file_deleted", NOVA, NOVA, "\"file_id\":\"" FILE_ID "\"");
    CU_ASSERT_PTR_NULL(recall_context_get(c, NOVA, CONTEXT_FILE, FILE_ID));
    recall_context_free(c);
}

/* A preset's parameters are kept in memory as jsonb gives them back: each
 * object's members in jsonb's order (shorter names first), a name given
 * twice keeping its last value. A use in the batch of the preset's create
 * counted {"high":2,"lo":1}, a use in a later batch (the facts read back
 * from recall_context) {"lo":1,"high":2}: two values of one setting, and
 * rows that depended on where batches were cut. */
static void test_parameters_as_jsonb(void)
{
    recall_context_t *c = recall_context_new(4);
    char *printed;

    learn(c, "preset.created", ECHO, ECHO,
          "\"preset_id\":\"" PRESET "\",\"name\":\"Hall\",\"plugin_type\":\"MixxVerb\","
          "\"parameters\":{\"eq\":{\"high\":2,\"lo\":1},\"a\":1,\"a\":[3,{\"zz\":1,\"y\":2}]},"
          "\"is_public\":false,\"is_system_preset\":false,\"tags\":[]");
    printed = cJSON_PrintUnformatted(
        cJSON_GetObjectItemCaseSensitive(recall_context_get(c, ECHO, CONTEXT_PRESET, PRESET), "parameters"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(printed);
    CU_ASSERT_STRING_EQUAL(printed, "{\"a\":[3,{\"y\":2,\"zz\":1}],\"eq\":{\"lo\":1,\"high\":2}}");
    cJSON_free(printed);
    recall_context_free(c);
}

/* A save gets the project's settings as they stand at the save; an
 * editor's save of it is not the owner's doing. */
static void test_save_signals(void)
{
    signal_list_t l = {0};
    signal_project_t p = {.user = NOVA, .genre = "lofi", .bpm = 80};
    prime_event_t *own = event("project.saved", NOVA, NOVA,
                               "\"project_id\":\"" PROJECT "\",\"base_version\":1,\"project_data\":{}");
    prime_event_t *editor = event("project.saved", ECHO, NOVA,
                                  "\"project_id\":\"" PROJECT "\",\"base_version\":1,\"project_data\":{}");

    CU_ASSERT_EQUAL(signals_of(&l, 0, own, &p, &(signal_preset_t){0}, -1), 2); /* genre, tempo */
    CU_ASSERT_STRING_EQUAL(l.items[0].key, "lofi");
    CU_ASSERT_STRING_EQUAL(l.items[1].key, "80-89");
    CU_ASSERT_EQUAL(signals_of(&l, 1, editor, &p, &(signal_preset_t){0}, -1), 0);
    signal_list_free(&l);
    prime_event_free(own);
    prime_event_free(editor);
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"a project's settings follow its owner's events in order", test_project_in_order},
        {"only the owner teaches; another user's ids are apart; user.deleted forgets", test_only_the_owner_teaches},
        {"presets (plugin, parameters, shared) and files (is_mix)", test_presets_and_files},
        {"a save's signals from its context; an editor's save counts nothing", test_save_signals},
        {"a preset's parameters as jsonb gives them back (member order, a name twice)", test_parameters_as_jsonb},
        {NULL, NULL},
    };
    return prime_test_run("recall_context", setup, teardown, tests);
}
