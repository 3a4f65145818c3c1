/* The materializer's table definitions (workers/materializer/tables.def)
 * against the migrated database: every table's columns, in order, by name,
 * and the value a new row gets. The fold writes rows whole, with the
 * seed's DEFAULTs written out in tables.def: a migration that adds a
 * column or changes a default must change tables.def too, and this test
 * says which column differs. */
#include "prime/migrate.h"
#include "prime/pg.h"
#include "tables.h"
#include "../support/prime_test.h"

#include <stdio.h>
#include <string.h>

static PGconn *conn;

static int suite_init(void)
{
    prime_error_t err;

    prime_error_clear(&err);
    if (!(conn = prime_pg_connect(prime_test_env("PRIME_TEST_DB"), &err)) ||
        prime_migrate(conn, PRIME_MIGRATE_APPLY, NULL, NULL, &err)) {
        fprintf(stderr, "test_tables: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    PQfinish(conn);
    return 0;
}

/* Whether the default expression gives the value fresh, in the column's
 * type (so that 1.0 and 1.00, or false and f, are the same value). */
static bool same_value(const char *expr, const char *type, const char *fresh)
{
    char sql[512];
    const char *params[1] = {fresh};
    PGresult *res;
    bool same;

    snprintf(sql, sizeof(sql), "SELECT (%s)::%s IS NOT DISTINCT FROM $1::%s", expr, type, type);
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    same = PQresultStatus(res) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(res, 0, 0), "t");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return same;
}

/* Why column c of table t differs from the database's column (name, type,
 * default expression or NULL), or NULL when it does not. */
static const char *column_differs(table_id_t t, size_t c, const char *name, const char *type, const char *expr)
{
    const char *fresh = tables[t].columns[c].fresh;

    if (strcmp(tables[t].columns[c].name, name))
        return "another name";
    if (fresh == DEFAULT_EVENT_TIME)
        return expr && (strstr(expr, "now()") || strstr(expr, "CURRENT_TIMESTAMP")) ? NULL
                                                                                     : "DEFAULT_EVENT_TIME, no NOW()";
    if (!fresh) /* the id comes from the event, whatever the default */
        return !expr || (c == 0 && strstr(expr, "gen_random_uuid()")) ? NULL : "DEFAULT_NULL, a DEFAULT in SQL";
    if (!expr)
        return "a value, no DEFAULT in SQL";
    return same_value(expr, type, fresh) ? NULL : "another value than the DEFAULT";
}

static void test_columns_and_defaults(void)
{
    static const char *const sql =
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = ('public.' || $1)::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
    size_t checked = 0;

    for (int t = 0; t < T_COUNT; t++) {
        const char *params[1] = {tables[t].name};
        PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(PQresultStatus(res), PGRES_TUPLES_OK);
        if ((size_t)PQntuples(res) != tables[t].ncolumns)
            fprintf(stderr, "%s: %d columns in the database, %zu in tables.def\n", tables[t].name, PQntuples(res),
                    tables[t].ncolumns);
        CU_ASSERT_EQUAL((size_t)PQntuples(res), tables[t].ncolumns);
        for (size_t c = 0; c < tables[t].ncolumns && c < (size_t)PQntuples(res); c++) {
            const char *why = column_differs((table_id_t)t, c, PQgetvalue(res, (int)c, 0), PQgetvalue(res, (int)c, 1),
                                             PQgetisnull(res, (int)c, 2) ? NULL : PQgetvalue(res, (int)c, 2));
            if (why)
                fprintf(stderr, "%s column %zu: tables.def has %s (%s), the database %s DEFAULT %s: %s\n",
                        tables[t].name, c + 1, tables[t].columns[c].name,
                        tables[t].columns[c].fresh == DEFAULT_EVENT_TIME ? "DEFAULT_EVENT_TIME"
                        : tables[t].columns[c].fresh                     ? tables[t].columns[c].fresh
                                                                         : "DEFAULT_NULL",
                        PQgetvalue(res, (int)c, 0), PQgetisnull(res, (int)c, 2) ? "none" : PQgetvalue(res, (int)c, 2),
                        why);
            CU_ASSERT_PTR_NULL(why);
            checked++;
        }
        PQclear(res);
    }
    CU_ASSERT(checked >= 150);
}

/* The constants are the positions of the names (the X-macro at work). */
static void test_constants_name_their_columns(void)
{
    CU_ASSERT_STRING_EQUAL(tables[T_PRIME_USERS].columns[C_prime_users_email].name, "email");
    CU_ASSERT_STRING_EQUAL(tables[T_STUDIO_PROJECTS].columns[C_studio_projects_project_version].name,
                           "project_version");
    CU_ASSERT_STRING_EQUAL(tables[T_AUDIO_FILES].columns[C_audio_files_is_mix].name, "is_mix");
    CU_ASSERT_STRING_EQUAL(tables[T_PROJECT_SNAPSHOTS].columns[C_project_snapshots_created_by].name, "created_by");
    CU_ASSERT_EQUAL(tables[T_MIXX_RECALL].ncolumns, (size_t)C_mixx_recall_COUNT_);
    for (size_t k = 0; k < ncascades; k++)
        CU_ASSERT(cascades[k].column < tables[cascades[k].child].ncolumns);
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"columns and defaults match the migrated database", test_columns_and_defaults},
        {"column constants name their columns", test_constants_name_their_columns},
        {NULL, NULL},
    };
    return prime_test_run("tables", suite_init, suite_cleanup, tests);
}
