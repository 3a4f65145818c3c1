/* Every value validation accepts fits the column it is stored in: the
 * migrations are applied to an ephemeral PostgreSQL (tests/with-stack
 * --pg), and each schema field with a prime.column is held against that
 * column in information_schema.columns: a number's accepted range against
 * INTEGER, BIGINT, SMALLINT or NUMERIC(p,s) (after rounding to s digits),
 * a text's length against VARCHAR(n)/CHAR(n), the kind of value against
 * the column's type. A field that is a number must say where it lands. */
#include "prime/migrate.h"
#include "prime/pg.h"
#include "prime/registry.h"
#include "../support/prime_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGconn *conn;
static prime_registry_t *reg;

static int suite_init(void)
{
    prime_error_t err;

    prime_error_clear(&err);
    if (!(reg = prime_registry_new(&err)) || !(conn = prime_pg_connect(prime_test_env("PRIME_TEST_DB"), &err)) ||
        prime_migrate(conn, PRIME_MIGRATE_APPLY, NULL, NULL, &err)) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    PQfinish(conn);
    prime_registry_free(reg);
    return 0;
}

/* The column's type: data_type, numeric precision and scale, length;
 * false (with a message) when there is no such column. */
typedef struct column {
    char type[64];
    int precision, scale, length; /* -1 when the column has none */
} column_t;

static bool find_column(const char *qualified, column_t *c)
{
    char schema[64] = "public", table[64], name[64];
    const char *params[3] = {schema, table, name};
    const char *dot1 = strchr(qualified, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    PGresult *r;
    bool found;

    if (dot2)
        snprintf(schema, sizeof(schema), "%.*s", (int)(dot1 - qualified), qualified);
    snprintf(table, sizeof(table), "%.*s", (int)((dot2 ? dot2 : dot1) - (dot2 ? dot1 + 1 : qualified)),
             dot2 ? dot1 + 1 : qualified);
    snprintf(name, sizeof(name), "%s", (dot2 ? dot2 : dot1) + 1);
    r = PQexecParams(conn,
                     "SELECT data_type, coalesce(numeric_precision, -1), coalesce(numeric_scale, -1), "
                     "coalesce(character_maximum_length, -1) FROM information_schema.columns "
                     "WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                     3, NULL, params, NULL, NULL, 0);
    found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (found) {
        snprintf(c->type, sizeof(c->type), "%s", PQgetvalue(r, 0, 0));
        c->precision = atoi(PQgetvalue(r, 0, 1));
        c->scale = atoi(PQgetvalue(r, 0, 2));
        c->length = atoi(PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return found;
}

/* [*lo, *hi]: what the column stores of a number, rounding included (a
 * NUMERIC(p,s) takes values that round to under 10^(p-s)). false when
 * the column does not hold numbers. */
static bool column_range(const column_t *c, double *lo, double *hi)
{
    if (!strcmp(c->type, "integer"))
        *hi = 2147483647.0;
    else if (!strcmp(c->type, "bigint"))
        *hi = 9223372036854775807.0;
    else if (!strcmp(c->type, "smallint"))
        *hi = 32767.0;
    else if (!strcmp(c->type, "numeric") && c->precision > 0)
        *hi = nextafter(pow(10, c->precision - c->scale) - 0.5 * pow(10, -c->scale), 0);
    else if (!strcmp(c->type, "numeric") || !strcmp(c->type, "double precision") || !strcmp(c->type, "real"))
        *hi = HUGE_VAL; /* unconstrained NUMERIC; floats hold any finite double we accept */
    else
        return false;
    *lo = -*hi;
    if (!strcmp(c->type, "integer") || !strcmp(c->type, "bigint") || !strcmp(c->type, "smallint"))
        *lo = -*hi - 1;
    return true;
}

/* Whether a field of this kind can be stored in a column of this type. */
static bool kind_fits(prime_field_kind_t kind, const column_t *c)
{
    double lo, hi;
    switch (kind) {
    case PRIME_FIELD_INT:
    case PRIME_FIELD_LONG:
    case PRIME_FIELD_DOUBLE:
        return column_range(c, &lo, &hi);
    case PRIME_FIELD_BOOLEAN:
        return !strcmp(c->type, "boolean");
    case PRIME_FIELD_TIMESTAMP:
        return !strncmp(c->type, "timestamp", 9);
    case PRIME_FIELD_STRING_ARRAY:
        return !strcmp(c->type, "ARRAY") || !strcmp(c->type, "jsonb");
    case PRIME_FIELD_STRING:
        return strcmp(c->type, "boolean") && strcmp(c->type, "ARRAY") && !column_range(c, &lo, &hi);
    }
    return false;
}

/* Checks one field; returns the number of problems found (and says each). */
static int check_field(const prime_event_type_t *t, size_t i)
{
    const char *type = prime_event_type_name(t), *field = prime_event_type_field_name(t, i);
    const char *where = prime_event_type_field_column(t, i);
    prime_field_kind_t kind = prime_event_type_field_kind(t, i);
    double lo, hi, col_lo, col_hi;
    bool number = prime_event_type_field_range(t, i, &lo, &hi);
    size_t max_length = prime_event_type_field_max_length(t, i);
    column_t c;

    if (!where) {
        if (!number)
            return 0;
        fprintf(stderr, "%s.%s: a number with no prime.column: say where it is stored\n", type, field);
        return 1;
    }
    if (!find_column(where, &c)) {
        fprintf(stderr, "%s.%s: prime.column %s is not a column of the migrations\n", type, field, where);
        return 1;
    }
    if (!kind_fits(kind, &c)) {
        fprintf(stderr, "%s.%s: a value of this field cannot be stored in %s (%s)\n", type, field, where, c.type);
        return 1;
    }
    if (number && column_range(&c, &col_lo, &col_hi) && (lo < col_lo || hi > col_hi)) {
        fprintf(stderr, "%s.%s: accepts [%.17g, %.17g], but %s (%s(%d,%d)) holds [%.17g, %.17g]\n", type, field, lo,
                hi, where, c.type, c.precision, c.scale, col_lo, col_hi);
        return 1;
    }
    if (max_length && c.length > 0 && max_length > (size_t)c.length) {
        fprintf(stderr, "%s.%s: accepts %zu bytes, but %s holds %d characters\n", type, field, max_length, where,
                c.length);
        return 1;
    }
    return 0;
}

static void test_every_field_fits_its_column(void)
{
    int problems = 0, declared = 0;

    for (size_t k = 0; k < prime_registry_count(reg); k++) {
        const prime_event_type_t *t = prime_registry_at(reg, k);
        for (size_t i = PRIME_ENVELOPE_FIELDS; i < prime_event_type_field_count(t); i++) {
            problems += check_field(t, i);
            declared += prime_event_type_field_column(t, i) != NULL;
        }
    }
    CU_ASSERT_EQUAL(problems, 0);
    CU_ASSERT(declared > 0);
    printf("%d fields declare their column\n", declared);
}

/* The check itself: a column narrower than a field's range is caught, and
 * so is a VARCHAR shorter than a field's length. */
static void test_the_check_sees_a_narrow_column(void)
{
    column_t c = {.type = "numeric", .precision = 10, .scale = 3, .length = -1};
    double lo, hi;

    CU_ASSERT_TRUE_FATAL(column_range(&c, &lo, &hi));
    CU_ASSERT(hi < 9999999.9995 && hi > 9999999.999);
    CU_ASSERT(lo > -9999999.9995);
    PGresult *r = PQexec(conn, "CREATE TABLE narrow (v VARCHAR(10), n NUMERIC(5,2))");

    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    CU_ASSERT_TRUE(find_column("narrow.v", &c));
    CU_ASSERT_EQUAL(c.length, 10);
    CU_ASSERT_TRUE(find_column("narrow.n", &c));
    CU_ASSERT_TRUE(column_range(&c, &lo, &hi));
    CU_ASSERT(hi < 999.995 && hi >= 999.99);
    CU_ASSERT_FALSE(find_column("narrow.missing", &c));
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"every schema field fits the column it lands in", test_every_field_fits_its_column},
        {"the check sees a narrow column", test_the_check_sees_a_narrow_column},
        {NULL, NULL},
    };
    return prime_test_run("columns", suite_init, suite_cleanup, tests);
}
