#include "show.h"

#include "prime/pg.h"
#include "prime/uuid.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plugin chain the studio pre-fills: the most confident plugins. */
#define CHAIN_MAX 4

static int usage(const char *why)
{
    fprintf(stderr, "prime-recall show: %s\nusage: prime-recall show USER [--category C] [--json] [--db CONNINFO]\n", why);
    return 2;
}

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

#define SHOW_SQL                                                                                                  \
    "SELECT category, recall_key, confidence::text, usage_count, "                                               \
    "to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), data::text "                    \
    "FROM mixx_recall WHERE user_id = $1 "                                                                       \
    "ORDER BY confidence DESC NULLS LAST, last_used_at DESC NULLS LAST, category, recall_key"

/* The studio's defaults for a new project: each category's most confident
 * item (genre, tempo, key, time signature, sample rate), the mixes'
 * loudness, and the plugin chain. */
static cJSON *defaults(PGresult *res)
{
    cJSON *d = cJSON_CreateObject(), *chain = cJSON_AddArrayToObject(d, "plugin_chain");
    bool seen_genre = false, seen_tempo = false, seen_key = false, seen_ts = false, seen_rate = false,
         seen_mix = false;

    for (int r = 0; r < PQntuples(res); r++) {
        const char *cat = PQgetvalue(res, r, 0), *key = PQgetvalue(res, r, 1);
        double conf = atof(PQgetvalue(res, r, 2));
        cJSON *data = cJSON_Parse(PQgetvalue(res, r, 5));
        const cJSON *v;
        if (conf <= 0) {
            cJSON_Delete(data);
            continue;
        }
        if (!strcmp(cat, "genre") && !seen_genre) {
            seen_genre = true;
            cJSON_AddStringToObject(d, "genre", key);
        } else if (!strcmp(cat, "tempo") && !seen_tempo && cJSON_IsNumber(v = cJSON_GetObjectItem(data, "bpm"))) {
            seen_tempo = true;
            cJSON_AddNumberToObject(d, "bpm", v->valuedouble);
        } else if (!strcmp(cat, "key") && !seen_key) {
            seen_key = true;
            cJSON_AddStringToObject(d, "key", key);
        } else if (!strcmp(cat, "time_signature") && !seen_ts) {
            seen_ts = true;
            cJSON_AddStringToObject(d, "time_signature", key);
        } else if (!strcmp(cat, "sample_rate") && !seen_rate) {
            seen_rate = true;
            cJSON_AddNumberToObject(d, "sample_rate", atoi(key));
        } else if (!strcmp(cat, "mixing") && !seen_mix &&
                   (cJSON_IsNumber(v = cJSON_GetObjectItem(data, "target_lufs")) ||
                    cJSON_IsNumber(v = cJSON_GetObjectItem(data, "integrated_lufs")))) {
            seen_mix = true;
            cJSON_AddNumberToObject(d, "loudness_target_lufs", v->valuedouble);
        } else if (!strcmp(cat, "plugin") && cJSON_GetArraySize(chain) < CHAIN_MAX) {
            cJSON *p = cJSON_CreateObject();
            v = cJSON_GetObjectItem(data, "common_settings");
            cJSON_AddStringToObject(p, "plugin", key);
            cJSON_AddNumberToObject(p, "confidence", conf);
            cJSON_AddItemToObject(p, "settings", cJSON_IsObject(v) ? cJSON_Duplicate(v, 1) : cJSON_CreateObject());
            cJSON_AddItemToArray(chain, p);
        }
        cJSON_Delete(data);
    }
    return d;
}

static void print_text(const char *user, PGresult *res, const char *category, cJSON *d)
{
    int shown = 0;
    char *text;

    printf("Mixx Recall of %s\n", user);
    printf("  %-10s %6s  %-20s  %-30s %s\n", "confidence", "uses", "last used", "category/item", "data");
    for (int r = 0; r < PQntuples(res); r++) {
        char item[300];
        if (category && strcmp(category, PQgetvalue(res, r, 0)))
            continue;
        snprintf(item, sizeof(item), "%s/%s", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
        printf("  %-10s %6s  %-20s  %-30s %s\n", PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), PQgetvalue(res, r, 4),
               item, PQgetvalue(res, r, 5));
        shown++;
    }
    if (!shown)
        printf("  (nothing recalled%s%s)\n", category ? " in " : "", category ? category : "");
    printf("Defaults for a new project:\n");
    for (const cJSON *m = d->child; m; m = m->next) {
        if (!strcmp(m->string, "plugin_chain"))
            continue;
        text = cJSON_PrintUnformatted(m);
        printf("  %-22s %s\n", m->string, text ? text : "");
        cJSON_free(text);
    }
    printf("  %-22s", "plugin_chain");
    if (!cJSON_GetArraySize(cJSON_GetObjectItem(d, "plugin_chain")))
        printf(" (none)");
    for (const cJSON *p = cJSON_GetObjectItem(d, "plugin_chain")->child; p; p = p->next) {
        text = cJSON_PrintUnformatted(cJSON_GetObjectItem(p, "settings"));
        printf(" %s %s%s", cJSON_GetObjectItem(p, "plugin")->valuestring, text ? text : "{}", p->next ? " ->" : "");
        cJSON_free(text);
    }
    printf("\n");
}

static void print_json(const char *user, PGresult *res, const char *category, cJSON *d)
{
    cJSON *out = cJSON_CreateObject(), *items;
    char *text;

    cJSON_AddStringToObject(out, "user", user);
    items = cJSON_AddArrayToObject(out, "items");
    for (int r = 0; r < PQntuples(res); r++) {
        cJSON *it;
        if (category && strcmp(category, PQgetvalue(res, r, 0)))
            continue;
        it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "category", PQgetvalue(res, r, 0));
        cJSON_AddStringToObject(it, "item", PQgetvalue(res, r, 1));
        cJSON_AddNumberToObject(it, "confidence", atof(PQgetvalue(res, r, 2)));
        cJSON_AddNumberToObject(it, "usage_count", atof(PQgetvalue(res, r, 3)));
        cJSON_AddStringToObject(it, "last_used_at", PQgetvalue(res, r, 4));
        cJSON_AddItemToObject(it, "data", cJSON_Parse(PQgetvalue(res, r, 5)));
        cJSON_AddItemToArray(items, it);
    }
    cJSON_AddItemReferenceToObject(out, "defaults", d);
    text = cJSON_PrintUnformatted(out);
    puts(text ? text : "{}");
    cJSON_free(text);
    cJSON_Delete(out);
}

int recall_show(int argc, char **argv)
{
    const char *user = NULL, *category = NULL, *db = getenv("PRIME_DB");
    char canon[PRIME_UUID_TEXT];
    bool json = false;
    PGconn *conn;
    PGresult *res;
    prime_error_t err;
    const char *params[1];
    cJSON *d;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--category") && i + 1 < argc)
            category = argv[++i];
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (argv[i][0] == '-')
            return usage("unknown option");
        else if (user)
            return usage("one USER only");
        else
            user = argv[i];
    }
    if (!user)
        return usage("USER: expected the user's id");
    if (!is_uuid(user)) {
        fprintf(stderr, "prime-recall show: USER: expected a UUID, got '%s'\n", user);
        return 2;
    }
    prime_uuid_canonical(user, canon);
    prime_error_clear(&err);
    if (!(conn = prime_pg_connect(db, &err))) {
        fprintf(stderr, "prime-recall show: %s\n", err.message);
        return 1;
    }
    params[0] = canon;
    if (!(res = prime_pg_query(conn, SHOW_SQL, 1, params, "reading mixx_recall", &err))) {
        fprintf(stderr, "prime-recall show: %s\n", err.message);
        PQfinish(conn);
        return 1;
    }
    d = defaults(res);
    if (json)
        print_json(canon, res, category, d);
    else
        print_text(canon, res, category, d);
    cJSON_Delete(d);
    PQclear(res);
    PQfinish(conn);
    return 0;
}
