/* prime_migrate against a real, ephemeral PostgreSQL (tests/with-stack):
 * the seed tables come out column for column as the seed SQL makes them,
 * and the runner is idempotent, safe under concurrency, and refuses drift. */
#include "prime/migrate.h"
#include "prime/pg.h"
#include "../support/prime_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const seed_tables[] = {
    "prime_users",    "studio_projects", "mixx_recall",    "project_snapshots",      "session_states",
    "audio_files",    "plugin_presets",  "collaboration_sessions", "auth_credentials", "auth_sessions", NULL,
};

static char admin_conninfo[512];

static void conninfo_for(const char *db, char *out, size_t size)
{
    snprintf(out, size, "%s dbname=%s", admin_conninfo, db);
}

static PGconn *connect_db(const char *db)
{
    char ci[600];
    PGconn *c;
    prime_error_t err;
    conninfo_for(db, ci, sizeof(ci));
    prime_error_clear(&err);
    c = prime_pg_connect(ci, &err);
    if (!c)
        fprintf(stderr, "connect %s: %s\n", db, err.message);
    return c;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static int suite_init(void)
{
    PGconn *admin;
    /* PRIME_TEST_DB names database "prime"; the tests make their own. */
    snprintf(admin_conninfo, sizeof(admin_conninfo), "%s", prime_test_env("PRIME_TEST_DB"));
    char *db = strstr(admin_conninfo, "dbname=");
    if (db)
        *db = '\0';
    admin = connect_db("postgres");
    if (!admin)
        return 1;
    int ok = exec_ok(admin, "CREATE DATABASE migrated") && exec_ok(admin, "CREATE DATABASE seeded") &&
             exec_ok(admin, "CREATE DATABASE raced") && exec_ok(admin, "CREATE DATABASE drifted") &&
             exec_ok(admin, "CREATE DATABASE handmade");
    PQfinish(admin);
    return ok ? 0 : 1;
}

static int migrate_db(const char *db, int *applied, prime_error_t *err)
{
    PGconn *c = connect_db(db);
    int rc;
    if (!c)
        return -1;
    prime_error_clear(err);
    rc = prime_migrate(c, PRIME_MIGRATE_APPLY, NULL, applied, err);
    PQfinish(c);
    return rc;
}

/* Rows of a query, one string per row with columns joined by '|'. */
typedef struct rows {
    char **row;
    int n;
} rows_t;

static rows_t query_rows(PGconn *c, const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    rows_t out = {0};
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
        PQclear(r);
        return out;
    }
    out.n = PQntuples(r);
    out.row = calloc((size_t)out.n + 1, sizeof(char *));
    for (int i = 0; i < out.n; i++) {
        size_t len = 1;
        for (int k = 0; k < PQnfields(r); k++)
            len += (size_t)PQgetlength(r, i, k) + 8;
        out.row[i] = calloc(1, len);
        for (int k = 0; k < PQnfields(r); k++) {
            strcat(out.row[i], k ? "|" : "");
            strcat(out.row[i], PQgetisnull(r, i, k) ? "<null>" : PQgetvalue(r, i, k));
        }
    }
    PQclear(r);
    return out;
}

static void rows_free(rows_t *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->row[i]);
    free(r->row);
}

/* Every row of want is in got; prints the ones missing. */
static int rows_contain(const rows_t *got, const rows_t *want, const char *what, const char *table)
{
    int missing = 0;
    for (int i = 0; i < want->n; i++) {
        int found = 0;
        for (int k = 0; k < got->n && !found; k++)
            found = !strcmp(got->row[k], want->row[i]);
        if (!found) {
            fprintf(stderr, "%s %s: seed has [%s], migrated database does not\n", table, what, want->row[i]);
            missing++;
        }
    }
    return missing == 0;
}

static const char columns_sql[] =
    "SELECT column_name, ordinal_position, data_type, udt_name, is_nullable, column_default, "
    "numeric_precision, numeric_scale, character_maximum_length, is_identity, is_generated "
    "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position";
static const char indexes_sql[] =
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 ORDER BY indexname";
static const char constraints_sql[] =
    "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = ('public.' || $1)::regclass ORDER BY conname";

static void test_seed_tables_column_for_column(void)
{
    FILE *f = fopen(prime_test_env("PRIME_SEED_SQL"), "rb");
    char *sql = calloc(1, 1 << 20);
    size_t n = f ? fread(sql, 1, (1 << 20) - 1, f) : 0;
    PGconn *seeded = connect_db("seeded"), *migrated;
    prime_error_t err;
    int applied = -1, columns = 0, indexes = 0;

    if (f)
        fclose(f);
    CU_ASSERT_FATAL(n > 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seeded);
    CU_ASSERT_FATAL(exec_ok(seeded, sql));
    CU_ASSERT_EQUAL_FATAL(migrate_db("migrated", &applied, &err), PRIME_OK);
    CU_ASSERT(applied >= 2);
    migrated = connect_db("migrated");

    {
        rows_t t = query_rows(seeded, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                                      "ORDER BY table_name", NULL);
        CU_ASSERT_EQUAL(t.n, 10);
        rows_free(&t);
    }
    for (int i = 0; seed_tables[i]; i++) {
        const char *sqls[3] = {columns_sql, indexes_sql, constraints_sql};
        const char *what[3] = {"column", "index", "constraint"};
        for (int k = 0; k < 3; k++) {
            rows_t want = query_rows(seeded, sqls[k], seed_tables[i]);
            rows_t got = query_rows(migrated, sqls[k], seed_tables[i]);
            CU_ASSERT(want.n > 0);
            CU_ASSERT(rows_contain(&got, &want, what[k], seed_tables[i]));
            if (k == 0) {
                /* Added columns may follow; the seed's come first, in order. */
                CU_ASSERT(got.n >= want.n);
                columns += want.n;
            }
            if (k == 1)
                indexes += want.n;
            rows_free(&want);
            rows_free(&got);
        }
    }
    /* Counted in the seed SQL's text: 152 columns; 34 CREATE INDEX plus 10
     * primary keys and 4 UNIQUE columns. A guard against comparing two empty
     * sets. */
    CU_ASSERT_EQUAL(columns, 152);
    CU_ASSERT_EQUAL(indexes, 48);
    {
        rows_t gin = query_rows(migrated, "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin%' "
                                          "AND schemaname = 'public' ORDER BY 1", NULL);
        CU_ASSERT_EQUAL(gin.n, 3);
        rows_free(&gin);
    }
    free(sql);
    PQfinish(seeded);
    PQfinish(migrated);
}

static void test_second_run_applies_nothing(void)
{
    prime_error_t err;
    int applied = -1;
    CU_ASSERT_EQUAL(migrate_db("migrated", &applied, &err), PRIME_OK);
    CU_ASSERT_EQUAL(applied, 0);
}

static void test_status_mode(void)
{
    PGconn *c = connect_db("migrated");
    prime_error_t err;
    char *text = NULL;
    size_t len = 0;
    int pending = -1;
    FILE *log = open_memstream(&text, &len);

    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_migrate(c, PRIME_MIGRATE_STATUS, log, &pending, &err), PRIME_OK);
    fclose(log);
    CU_ASSERT_EQUAL(pending, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "applied  0001_seed_tables.sql"));
    free(text);
    PQfinish(c);
}

/* Two processes migrate one empty database at the same moment: both
 * succeed and every migration is recorded once. */
static void test_concurrent_runs(void)
{
    pid_t kids[2];
    int ok = 1;

    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            prime_error_t err;
            int applied;
            int rc = migrate_db("raced", &applied, &err);
            if (rc)
                fprintf(stderr, "child %d: %s\n", i, err.message);
            _exit(rc ? 1 : 0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status;
        waitpid(kids[i], &status, 0);
        ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    CU_ASSERT(ok);
    {
        PGconn *c = connect_db("raced");
        rows_t r = query_rows(c, "SELECT version, count(*) FROM prime_pipeline.schema_migrations GROUP BY version "
                                 "HAVING count(*) > 1", NULL);
        rows_t all = query_rows(c, "SELECT version FROM prime_pipeline.schema_migrations", NULL);
        CU_ASSERT_EQUAL(r.n, 0);
        CU_ASSERT(all.n >= 2);
        rows_free(&r);
        rows_free(&all);
        PQfinish(c);
    }
}

static void test_drift_is_refused(void)
{
    prime_error_t err;
    int applied;
    PGconn *c;

    CU_ASSERT_EQUAL_FATAL(migrate_db("drifted", &applied, &err), PRIME_OK);
    c = connect_db("drifted");
    CU_ASSERT(exec_ok(c, "UPDATE prime_pipeline.schema_migrations SET sha256 = 'edited' WHERE version = 1"));
    CU_ASSERT_EQUAL(migrate_db("drifted", &applied, &err), PRIME_ERR_DB);
    CU_ASSERT_STRING_EQUAL(err.field, "0001_seed_tables.sql");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "has changed since"));

    CU_ASSERT(exec_ok(c, "UPDATE prime_pipeline.schema_migrations SET sha256 = "
                         "(SELECT sha256 FROM prime_pipeline.schema_migrations WHERE version = 2) WHERE version = 1"));
    CU_ASSERT(exec_ok(c, "DELETE FROM prime_pipeline.schema_migrations WHERE version = 1"));
    CU_ASSERT(exec_ok(c, "INSERT INTO prime_pipeline.schema_migrations (version, name, sha256) "
                         "VALUES (9999, '9999_future.sql', 'x')"));
    CU_ASSERT_EQUAL(migrate_db("drifted", &applied, &err), PRIME_ERR_DB);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "migration 9999, which this build does not know"));
    PQfinish(c);
}

static void test_unreachable_server_is_retriable(void)
{
    prime_error_t err;
    prime_error_clear(&err);
    CU_ASSERT_PTR_NULL(prime_pg_connect("host=127.0.0.1 port=1 connect_timeout=2", &err));
    CU_ASSERT_EQUAL(err.code, PRIME_ERR_DB);
    CU_ASSERT(err.retriable);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "cannot connect to PostgreSQL"));
}

static void test_sql_errors_name_the_line(void)
{
    PGconn *c = connect_db("migrated");
    prime_error_t err;
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_pg_exec(c, "SELECT 1;\nSELECT 2;\nSELEC 3;", "three statements", &err), PRIME_ERR_DB);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "three statements (line 3)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "SQLSTATE 42601"));
    /* Class 42: the SQL does not fit the server, no event is to blame. */
    CU_ASSERT(err.retriable);
    PQfinish(c);
}

static void test_audit_log_is_append_only(void)
{
    PGconn *c = connect_db("migrated");
    CU_ASSERT(exec_ok(c, "INSERT INTO prime_pipeline.audit_log (audit_id, entity_type, entity_id, operation, "
                         "occurred_at, source_topic, source_partition, source_offset, audit_partition, audit_offset, "
                         "record_hash) VALUES ('00000000-0000-4000-8000-000000000001', 'studio_projects', 'p', "
                         "'insert', '2026-01-01Z', 'prime.projects', 0, 0, 0, 0, 'h')"));
    PGresult *r = PQexec(c, "UPDATE prime_pipeline.audit_log SET detail = 'x'");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(PQresultErrorMessage(r), "append-only"));
    PQclear(r);
    r = PQexec(c, "DELETE FROM prime_pipeline.audit_log");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    r = PQexec(c, "TRUNCATE prime_pipeline.audit_log");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    PQfinish(c);
}

/* Status of db as role (NULL: the suite's), its log in *text. */
static prime_errcode_t status_of(const char *db, const char *role, int timeout_ms, int *pending, int *drift,
                                 char **text, prime_error_t *err)
{
    char ci[700];
    size_t len = 0;
    FILE *log = open_memstream(text, &len);
    PGconn *c;
    prime_errcode_t rc;

    conninfo_for(db, ci, sizeof(ci));
    if (role)
        snprintf(ci + strlen(ci), sizeof(ci) - strlen(ci), " user=%s", role);
    prime_error_clear(err);
    if (!(c = prime_pg_connect(ci, err))) {
        fclose(log);
        return PRIME_ERR_DB;
    }
    rc = prime_migrate_with_timeout(c, PRIME_MIGRATE_STATUS, timeout_ms, log, pending, drift, err);
    fclose(log);
    PQfinish(c);
    return rc;
}

/* Changed by hand after the migrations: a column dropped (the columns
 * after it move up a position), a type changed, an index dropped. --status names each, for a read-only user too, and the
 * program exits 1; a second migrate run says so instead of "up to date". */
static void test_status_finds_drift(void)
{
    PGconn *c;
    prime_error_t err;
    char *text = NULL, cmd[1200], ci[700];
    int pending = -1, drift = -1, applied = -1;

    CU_ASSERT_EQUAL_FATAL(migrate_db("handmade", &applied, &err), PRIME_OK);
    CU_ASSERT_EQUAL(status_of("handmade", NULL, 1000, &pending, &drift, &text, &err), PRIME_OK);
    CU_ASSERT_EQUAL(drift, 0);
    CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "schema   matches the migrations"));
    free(text);
    c = connect_db("handmade");
    CU_ASSERT_FATAL(c && exec_ok(c, "ALTER TABLE auth_sessions DROP COLUMN user_agent; "
                                    "ALTER TABLE prime_users ALTER COLUMN username TYPE VARCHAR(50); "
                                    "DROP INDEX idx_prime_users_email; "
                                    "DROP ROLE IF EXISTS reader; CREATE ROLE reader LOGIN; GRANT pg_read_all_data TO reader; "
                                    "ALTER ROLE reader SET default_transaction_read_only = on"));
    PQfinish(c);
    for (int as_reader = 0; as_reader < 2; as_reader++) {
        text = NULL;
        CU_ASSERT_EQUAL(status_of("handmade", as_reader ? "reader" : NULL, 1000, &pending, &drift, &text, &err), PRIME_OK);
        if (err.code)
            fprintf(stderr, "status: %s\n", err.message);
        CU_ASSERT_EQUAL(pending, 0);
        /* user_agent gone, the three columns after it one position up, username, the index */
        CU_ASSERT_EQUAL(drift, 6);
        CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "drift    public.auth_sessions.is_revoked: expected boolean default "
                                                    "false, position 13, found boolean default false, position 12"));
        CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "drift    public.auth_sessions.user_agent: expected text, position 12, found nothing"));
        CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "drift    public.prime_users.username: expected text not null, "
                                                    "position 4, found character varying(50) not null, position 4"));
        CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "drift    public.prime_users index idx_prime_users_email: expected "
                                                    "CREATE INDEX idx_prime_users_email ON public.prime_users USING btree "
                                                    "(email), found nothing"));
        free(text);
    }
    conninfo_for("handmade", ci, sizeof(ci));
    snprintf(cmd, sizeof(cmd), "'%s' --db '%s user=reader' --status >/dev/null", prime_test_env("PRIME_MIGRATE"), ci);
    CU_ASSERT_EQUAL(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof(cmd), "'%s' --db '%s' | grep -q 'schema drifted from them in 6 places'",
             prime_test_env("PRIME_MIGRATE"), ci);
    CU_ASSERT_EQUAL(WEXITSTATUS(system(cmd)), 0);
}

/* A migration holding the lock: a status gives up after its time-out with
 * a message saying why, instead of hanging. */
static void test_lock_timeout(void)
{
    PGconn *holder = connect_db("handmade");
    prime_error_t err;
    char *text = NULL;
    int pending, drift;

    CU_ASSERT_FATAL(holder && exec_ok(holder, "SELECT pg_advisory_lock(7254301906542813)"));
    CU_ASSERT_EQUAL(status_of("handmade", NULL, 300, &pending, &drift, &text, &err), PRIME_ERR_DB);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "the migration lock is held by another session"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "after 300 ms"));
    free(text);
    PQfinish(holder);
    text = NULL;
    CU_ASSERT_EQUAL(status_of("handmade", NULL, 300, &pending, &drift, &text, &err), PRIME_OK);
    free(text);
}

/* The migrations' schema as compiled in is the one they make: a migration
 * added without regenerating schemas/sql/schema.expected fails here. */
static void test_expected_schema_is_current(void)
{
    prime_error_t err;
    char *text = NULL;
    int pending = -1, drift = -1;

    CU_ASSERT_EQUAL(status_of("migrated", NULL, 1000, &pending, &drift, &text, &err), PRIME_OK);
    CU_ASSERT_EQUAL(drift, 0);
    if (drift)
        fprintf(stderr, "%s\nregenerate: prime-migrate --print-schema > schemas/sql/schema.expected (fresh database)\n",
                text);
    free(text);
}

/* The classes by who is at fault: the data (dead-letter the event) or the
 * environment (wait and retry). */
static void test_sqlstate_classes(void)
{
    static const char *const data[] = {"22001", "22003", "22P02", "22021", "23505", "23502", "23503", "23514",
                                       "21000", "P0001", NULL};
    static const char *const environment[] = {"42703", "42P01", "42883", "42501", "28P01", "3D000", "3F000",
                                              "53100", "53200", "55P03", "57014", "57P01", "58030", "XX001",
                                              "08006", "40001", "40P01", "25006", "ZZ999", NULL};
    for (int i = 0; data[i]; i++)
        CU_ASSERT_FALSE(prime_pg_sqlstate_retriable(data[i]));
    for (int i = 0; environment[i]; i++)
        CU_ASSERT_TRUE(prime_pg_sqlstate_retriable(environment[i]));
    CU_ASSERT_TRUE(prime_pg_sqlstate_retriable(NULL));
}

/* One failed statement, its error as prime_pg_error makes it. */
static void error_of(PGconn *c, const char *sql, prime_error_t *err)
{
    prime_error_clear(err);
    CU_ASSERT_EQUAL(prime_pg_exec(c, sql, "test", err), PRIME_ERR_DB);
}

/* A refused value never reaches the message: not from DETAIL ("Key
 * (secret)=(...)", "Failing row contains (...)"), not from the primary
 * message ("invalid input syntax for type uuid: \"...\""). The objects
 * are named: the key's columns, the constraint. */
static void test_data_errors_withhold_values(void)
{
    PGconn *c = connect_db("migrated");
    prime_error_t err;

    CU_ASSERT_FATAL(exec_ok(c, "CREATE TABLE leak (id INT PRIMARY KEY, secret TEXT UNIQUE, n INT CHECK (n > 0), "
                               "u UUID, email TEXT NOT NULL DEFAULT 'x')"));
    CU_ASSERT_FATAL(exec_ok(c, "INSERT INTO leak (id, secret, n) VALUES (1, 'canary-7f3a', 1)"));
    error_of(c, "INSERT INTO leak (id, secret, n) VALUES (2, 'canary-7f3a', 1)", &err);
    CU_ASSERT_PTR_NULL(strstr(err.message, "canary"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "leak_secret_key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "key (secret)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "SQLSTATE 23505"));
    CU_ASSERT_FALSE(err.retriable);
    error_of(c, "INSERT INTO leak (id, secret, n) VALUES (3, 'canary-8b1c', -1)", &err);
    CU_ASSERT_PTR_NULL(strstr(err.message, "canary"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "leak_n_check"));
    CU_ASSERT_FALSE(err.retriable);
    error_of(c, "INSERT INTO leak (id, secret, n, email) VALUES (4, 'canary-9d2e', 1, NULL)", &err);
    CU_ASSERT_PTR_NULL(strstr(err.message, "canary"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "column leak.email"));
    error_of(c, "INSERT INTO leak (id, u) VALUES (5, 'canary-\"quoted\"-value')", &err);
    CU_ASSERT_PTR_NULL(strstr(err.message, "canary"));
    CU_ASSERT_PTR_NULL(strstr(err.message, "quoted"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "SQLSTATE 22P02"));
    CU_ASSERT_FALSE(err.retriable);
    CU_ASSERT(exec_ok(c, "DROP TABLE leak"));
    PQfinish(c);
}

/* A column dropped by hand, a missing table, a permission refused: the
 * environment's fault, retriable, and the message names what is missing. */
static void test_environment_errors_are_retriable(void)
{
    PGconn *c = connect_db("migrated");
    prime_error_t err;

    CU_ASSERT_FATAL(exec_ok(c, "CREATE TABLE drifted (id INT, kept TEXT)"));
    error_of(c, "INSERT INTO drifted (id, gone) VALUES (1, 'x')", &err);
    CU_ASSERT_TRUE(err.retriable);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "gone"));
    error_of(c, "SELECT * FROM no_such_table", &err);
    CU_ASSERT_TRUE(err.retriable);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "no_such_table"));
    CU_ASSERT_FATAL(exec_ok(c, "DROP ROLE IF EXISTS nobody_much; CREATE ROLE nobody_much"));
    CU_ASSERT_FATAL(exec_ok(c, "SET ROLE nobody_much"));
    error_of(c, "INSERT INTO drifted (id) VALUES (1)", &err);
    CU_ASSERT_TRUE(err.retriable);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "SQLSTATE 42501"));
    CU_ASSERT(exec_ok(c, "RESET ROLE; DROP TABLE drifted; DROP ROLE nobody_much"));
    PQfinish(c);
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"migrations make the seed tables column for column", test_seed_tables_column_for_column},
        {"a second run applies nothing", test_second_run_applies_nothing},
        {"status mode reports without applying", test_status_mode},
        {"two concurrent runs apply each migration once", test_concurrent_runs},
        {"an edited migration or an unknown one is refused", test_drift_is_refused},
        {"an unreachable server is a retriable error", test_unreachable_server_is_retriable},
        {"SQL errors name the statement line and SQLSTATE", test_sql_errors_name_the_line},
        {"audit_log refuses UPDATE, DELETE and TRUNCATE", test_audit_log_is_append_only},
        {"SQLSTATE classes: the data's fault or the environment's", test_sqlstate_classes},
        {"data errors withhold the values (DETAIL, quoted values)", test_data_errors_withhold_values},
        {"schema drift and permissions are retriable", test_environment_errors_are_retriable},
        {"schemas/sql/schema.expected is what the migrations make", test_expected_schema_is_current},
        {"--status names each drift, as a read-only user too", test_status_finds_drift},
        {"the migration lock times out with a message", test_lock_timeout},
        {NULL, NULL},
    };
    return prime_test_run("migrate", suite_init, NULL, tests);
}
