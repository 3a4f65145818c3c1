/* prime-echo-worker: the smallest real worker, for testing the runtime.
 * Each record becomes a row of worker_echo (topic, kafka_partition,
 * kafka_offset, payload), whose primary key makes a record applied twice an
 * error rather than a silent duplicate. A payload starting with POISON is
 * dead-lettered; one starting with FAIL makes apply() fail (as a worker
 * whose answer to a record does not fit its schema), and the runtime must
 * find and dead-letter it. PRIME_ECHO_DELAY_MS slows each batch down (inside
 * its transaction, before its rows are written), to widen the windows a
 * crash test aims at. PRIME_ECHO_EMIT=TOPIC emits each applied record's
 * payload as a derived event to TOPIC, through the outbox. */
#include "prime/pg.h"
#include "prime/worker.h"
#include "prime/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static prime_errcode_t apply(prime_worker_t *w, PGconn *conn, const prime_record_t *r, size_t n, void *ctx,
                             prime_error_t *err)
{
    const char *delay = getenv("PRIME_ECHO_DELAY_MS");
    prime_buf_t sql;
    const char **params = calloc(n * 4 + 1, sizeof(char *));
    char (*nums)[2][24] = calloc(n + 1, sizeof(*nums));
    char **payloads = calloc(n + 1, sizeof(char *));
    size_t rows = 0;
    prime_errcode_t rc = PRIME_OK;

    (void)ctx;
    if (delay && n) /* batches, not the idle housekeeping */
        usleep((useconds_t)atoi(delay) * 1000);
    prime_buf_init(&sql, 0);
    prime_buf_puts(&sql, "INSERT INTO worker_echo (topic, kafka_partition, kafka_offset, payload) VALUES ");
    for (size_t i = 0; i < n && !rc; i++) {
        if (r[i].len >= 6 && !memcmp(r[i].value, "POISON", 6)) {
            prime_error_t why;
            prime_error_clear(&why);
            prime_error_set(&why, PRIME_ERR_INVALID, "payload", "a poison record (test)");
            rc = prime_worker_dead_letter(w, &r[i], &why, err);
            continue;
        }
        if (r[i].len >= 4 && !memcmp(r[i].value, "FAIL", 4)) {
            rc = prime_error_set(err, PRIME_ERR_INVALID, "answer", "the answer does not fit its schema (test)");
            break;
        }
        snprintf(nums[rows][0], sizeof(nums[rows][0]), "%d", (int)r[i].partition);
        snprintf(nums[rows][1], sizeof(nums[rows][1]), "%lld", (long long)r[i].offset);
        payloads[rows] = strndup(r[i].value, r[i].len);
        params[rows * 4] = r[i].topic;
        params[rows * 4 + 1] = nums[rows][0];
        params[rows * 4 + 2] = nums[rows][1];
        params[rows * 4 + 3] = payloads[rows];
        prime_buf_printf(&sql, "%s($%zu, $%zu, $%zu, $%zu)", rows ? ", " : "", rows * 4 + 1, rows * 4 + 2, rows * 4 + 3,
                         rows * 4 + 4);
        rows++;
    }
    if (!rc && rows) {
        PGresult *res = PQexecParams(conn, sql.data, (int)(rows * 4), NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = prime_pg_error(conn, res, "inserting worker_echo rows", NULL, err);
        PQclear(res);
    }
    if (!rc && rows && getenv("PRIME_ECHO_EMIT")) {
        prime_emit_t *out = calloc(rows, sizeof(*out));
        char (*keys)[48] = calloc(rows, sizeof(*keys));
        if (!out || !keys)
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory emitting");
        for (size_t i = 0; i < rows && !rc; i++) {
            snprintf(keys[i], sizeof(keys[i]), "%s-%s", nums[i][0], nums[i][1]);
            out[i] = (prime_emit_t){.topic = getenv("PRIME_ECHO_EMIT"), .key = keys[i], .event_type = "test.echo",
                                    .value = payloads[i], .len = strlen(payloads[i])};
        }
        if (!rc)
            rc = prime_worker_emit(w, conn, out, rows, err);
        free(out);
        free(keys);
    }
    if (!rc)
        prime_worker_count_applied(w, rows);
    for (size_t i = 0; i < rows; i++)
        free(payloads[i]);
    free(payloads);
    free(nums);
    free(params);
    prime_buf_free(&sql);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const topics[] = {"prime.test", NULL};
    prime_worker_conf_t conf;
    int rc = prime_worker_conf_parse(&conf, "echo", topics, argc, argv);

    if (rc)
        return rc < 0 ? 0 : rc;
    return prime_worker_run(&conf, apply, NULL);
}
