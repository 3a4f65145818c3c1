/* Mixx Recall's model without servers (workers/recall/model.c, item.c):
 * counting, decay in event time, shrinkage, category totals, pins and
 * forgetting, order- and batch-independence to the last bit, and property
 * checks over random event streams. */
#include "item.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/prime_test.h"

#define DAY_US (86400LL * 1000000LL)
#define H (30 * DAY_US)
#define T0 1795608000000000LL /* 2026-11-25T00:00:00Z */

static recall_item_t *item(const char *key)
{
    recall_item_t *it = recall_item_new("00000000-0000-4000-8000-000000000000", "11111111-1111-4111-8111-111111111111",
                                        "plugin", key, NULL);
    CU_ASSERT_FATAL(it != NULL);
    return it;
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_counting(void)
{
    recall_item_t *it = item("MixxDrive");
    char *data;
    cJSON *d;

    for (int i = 0; i < 3; i++)
        recall_item_use(it, T0 + i * 1000000, H);
    CU_ASSERT_EQUAL(recall_item_uses(it), 3);
    CU_ASSERT_EQUAL(recall_item_first(it), T0);
    CU_ASSERT_EQUAL(recall_item_last(it), T0 + 2000000);
    data = recall_item_data(it);
    d = cJSON_Parse(data);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(d, "usage_count")->valueint, 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d, "item")->valuestring, "MixxDrive");
    cJSON_Delete(d);
    free(data);
    recall_item_free(it);
}

static void test_half_life(void)
{
    recall_evidence_t e;

    recall_evidence_init(&e);
    recall_evidence_add(&e, T0, H);
    CU_ASSERT_DOUBLE_EQUAL(recall_evidence_weight(&e, T0, H), 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(recall_evidence_weight(&e, T0 + H, H), 0.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(recall_evidence_weight(&e, T0 + 3 * H, H), 0.125, 1e-9);
    /* A bucket boundary in between changes nothing. */
    recall_evidence_add(&e, T0 + H / 3, H);
    CU_ASSERT_DOUBLE_EQUAL(recall_evidence_weight(&e, T0 + H, H), 0.5 + pow(2, -2.0 / 3), 1e-9);
}

/* A preference used often a year ago loses to one used twice this week. */
static void decay_case(int64_t h, double *old_conf, double *new_conf)
{
    recall_item_t *items[2] = {item("OldFavourite"), item("NewFavourite")};
    int64_t now = T0 + 365 * DAY_US;

    for (int i = 0; i < 20; i++)
        recall_item_use(items[0], T0 + i * DAY_US / 10, h);
    recall_item_use(items[1], now - 3 * DAY_US, h);
    recall_item_use(items[1], now, h);
    CU_ASSERT_TRUE(recall_items_score(items, 2, h));
    CU_ASSERT_EQUAL(recall_item_uses(items[0]), 20);
    *old_conf = items[0]->confidence;
    *new_conf = items[1]->confidence;
    recall_item_free(items[0]);
    recall_item_free(items[1]);
}

static void test_decay_year_vs_week(void)
{
    double old_conf, new_conf;

    decay_case(H, &old_conf, &new_conf);
    CU_ASSERT_TRUE(new_conf > old_conf);
    CU_ASSERT_EQUAL(old_conf, 0.0); /* 20 uses * 2^-12 of weight */
    /* With a half-life of a year, twenty uses a year ago beat two now. */
    decay_case(365 * DAY_US, &old_conf, &new_conf);
    CU_ASSERT_TRUE(old_conf > new_conf);
}

static void test_shrinkage(void)
{
    recall_item_t *it = item("Only");

    recall_item_use(it, T0, H);
    CU_ASSERT_TRUE(recall_items_score(&it, 1, H));
    CU_ASSERT_EQUAL(it->confidence, 0.50); /* 1 / (1 + prior 1) */
    for (int i = 1; i < 9; i++)
        recall_item_use(it, T0, H);
    CU_ASSERT_TRUE(recall_items_score(&it, 1, H));
    CU_ASSERT_EQUAL(it->confidence, 0.90); /* 9 / 10 */
    for (int i = 0; i < 100000; i++)
        recall_item_use(it, T0, H);
    CU_ASSERT_TRUE(recall_items_score(&it, 1, H));
    CU_ASSERT_TRUE(it->confidence < 1.0); /* never certain from evidence alone */
    CU_ASSERT_EQUAL(it->confidence, 0.99);
    recall_item_free(it);
}

static void test_category_totals(void)
{
    recall_item_t *items[3] = {item("A"), item("B"), item("C")};
    double sum = 0;

    for (int i = 0; i < 6; i++)
        recall_item_use(items[0], T0, H);
    for (int i = 0; i < 2; i++)
        recall_item_use(items[1], T0, H);
    recall_item_use(items[2], T0, H);
    CU_ASSERT_TRUE(recall_items_score(items, 3, H));
    CU_ASSERT_EQUAL(items[0]->confidence, 0.60); /* 6 / (9 + 1) */
    CU_ASSERT_EQUAL(items[1]->confidence, 0.20);
    CU_ASSERT_EQUAL(items[2]->confidence, 0.10);
    for (int i = 0; i < 3; i++) {
        sum += items[i]->confidence;
        recall_item_free(items[i]);
    }
    CU_ASSERT_TRUE(sum <= 1.0);
}

static void test_rounding_never_exceeds_one(void)
{
    double w[3] = {1, 1, 1}, pin[3] = {-1, -1, -1}, out[3];
    double pins[3] = {0.7, 0.7, -1};

    recall_confidence(w, pin, 3, out);
    CU_ASSERT_EQUAL(out[0], 0.25); /* 1 / 4 */
    recall_confidence(w, pins, 3, out);
    CU_ASSERT_EQUAL(out[0], 0.5); /* two pins over 1 together: scaled down */
    CU_ASSERT_EQUAL(out[1], 0.5);
    CU_ASSERT_EQUAL(out[2], 0.0);
    CU_ASSERT_EQUAL(recall_hundredths_down(0.3), 0.30);
    CU_ASSERT_EQUAL(recall_hundredths_down(0.299), 0.29);
    CU_ASSERT_EQUAL(recall_hundredths_down(1.0), 1.00);
}

static void test_pin_and_forget(void)
{
    recall_item_t *items[2] = {item("Pinned"), item("Learned")};
    cJSON *data = cJSON_Parse("{\"drive\":0.3}");
    char *text;

    for (int i = 0; i < 5; i++)
        recall_item_use(items[1], T0, H);
    recall_item_pin(items[0], T0, "00000000-0000-4000-8000-000000000001", 0.8, data);
    CU_ASSERT_TRUE(recall_items_score(items, 2, H));
    CU_ASSERT_EQUAL(items[0]->confidence, 0.80);
    CU_ASSERT_EQUAL(items[1]->confidence, 0.16); /* 0.2 * 5 / 6 */
    CU_ASSERT_EQUAL(recall_item_uses(items[0]), 0);
    text = recall_item_data(items[0]);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"pinned\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"drive\":0.3"));
    free(text);
    /* An older set does not replace a newer one. */
    recall_item_pin(items[0], T0 - 1, "00000000-0000-4000-8000-000000000002", 0.1, NULL);
    CU_ASSERT_EQUAL(recall_item_pinned(items[0]), 0.8);
    /* Forgetting the pinned one gives the learned one its own weight back. */
    recall_item_clear(items[0]);
    items[0]->gone = true;
    CU_ASSERT_TRUE(recall_items_score(items, 2, H));
    CU_ASSERT_EQUAL(items[1]->confidence, 0.83); /* 5 / 6 */
    text = recall_item_state_text(items[0]);
    CU_ASSERT_STRING_EQUAL(text, "{}");
    free(text);
    cJSON_Delete(data);
    recall_item_free(items[0]);
    recall_item_free(items[1]);
}

static void test_moments_and_settings(void)
{
    recall_item_t *a = item("Tempo"), *b = item("Tempo");
    double bpm[] = {140, 142, 138.5, 141.25};
    const char *settings[] = {"{\"drive\":0.4,\"mode\":\"warm\"}", "{\"drive\":0.6}", "{\"drive\":0.4}",
                              "{\"drive\":0.6,\"mode\":\"hot\"}"};
    char *da, *db;
    cJSON *d;

    for (int i = 0; i < 4; i++) {
        cJSON *s = cJSON_Parse(settings[i]), *s2 = cJSON_Parse(settings[3 - i]);
        recall_item_moment(a, "bpm", bpm[i]);
        recall_item_moment(b, "bpm", bpm[3 - i]);
        recall_item_count_settings(a, s);
        recall_item_count_settings(b, s2);
        cJSON_Delete(s);
        cJSON_Delete(s2);
    }
    da = recall_item_data(a);
    db = recall_item_data(b);
    d = cJSON_Parse(da);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(d, "bpm")->valuedouble, 140.44, 1e-9);     /* 561.75 / 4 */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(d, "bpm_spread")->valuedouble, 1.33, 1e-9); /* population sd */
    /* drive: 0.4 twice and 0.6 twice: the tie goes to the smaller text. */
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "common_settings"), "drive")->valuedouble, 0.4,
                           1e-12);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "common_settings"), "mode")->valuestring, "hot");
    /* The same values in the other order: the same numbers (JSONB would
     * order the members; here the data's members come from the state). */
    {
        cJSON *e = cJSON_Parse(db);
        CU_ASSERT_TRUE(cJSON_Compare(d, e, 1));
        cJSON_Delete(e);
    }
    cJSON_Delete(d);
    free(da);
    free(db);
    recall_item_free(a);
    recall_item_free(b);
}

/* The evidence of a set of uses is the same in any order: the text (what is
 * stored) byte for byte and the weight bit for bit. Uses span 200
 * half-lives, so pruning happens along the way. */
static void test_evidence_order_free(void)
{
    int64_t t[300];
    recall_evidence_t a, b;
    char ta[RECALL_EVIDENCE_TEXT], tb[RECALL_EVIDENCE_TEXT];

    for (int round = 0; round < 50; round++) {
        int n = 1 + (int)(rnd() % 300);
        for (int i = 0; i < n; i++)
            t[i] = T0 + (int64_t)(rnd() % (uint64_t)(200 * H)) - 100 * H;
        recall_evidence_init(&a);
        for (int i = 0; i < n; i++)
            recall_evidence_add(&a, t[i], H);
        for (int i = n - 1; i > 0; i--) { /* shuffle */
            int j = (int)(rnd() % (uint64_t)(i + 1));
            int64_t x = t[i];
            t[i] = t[j], t[j] = x;
        }
        recall_evidence_init(&b);
        for (int i = 0; i < n; i++) {
            recall_evidence_add(&b, t[i], H);
            if (rnd() % 3 == 0) { /* a batch boundary: stored and read back */
                recall_evidence_format(&b, tb, sizeof(tb));
                CU_ASSERT_TRUE_FATAL(recall_evidence_parse(&b, tb));
            }
        }
        recall_evidence_format(&a, ta, sizeof(ta));
        recall_evidence_format(&b, tb, sizeof(tb));
        CU_ASSERT_STRING_EQUAL(ta, tb);
        CU_ASSERT_TRUE(a.n <= RECALL_SPAN + 1);
        {
            double wa = recall_evidence_weight(&a, T0 + 100 * H, H), wb = recall_evidence_weight(&b, T0 + 100 * H, H);
            CU_ASSERT_EQUAL(memcmp(&wa, &wb, sizeof(wa)), 0);
        }
    }
    CU_ASSERT_FALSE(recall_evidence_parse(&a, "1:2,1:3"));
    CU_ASSERT_FALSE(recall_evidence_parse(&a, "x"));
    CU_ASSERT_FALSE(recall_evidence_parse(&a, "1:-5"));
}

/* A random stream of uses, pins and forgets on one category's items. */
typedef struct step {
    int item, kind; /* 0 use, 1 pin, 2 forget */
    int64_t t;
    double conf;
} step_t;

#define NKEYS 6
static const char *const keys[NKEYS] = {"a", "b", "c", "d", "e", "f"};

/* Runs steps on fresh items; with boundaries, each item's state goes
 * through its text form (as a batch commit and the next read do) at
 * random points. Leaves the scored items in out. */
static void run(const step_t *steps, int n, bool boundaries, int skip_item, recall_item_t *out[NKEYS])
{
    for (int k = 0; k < NKEYS; k++)
        out[k] = item(keys[k]);
    for (int i = 0; i < n; i++) {
        const step_t *s = &steps[i];
        recall_item_t *it = out[s->item];
        char id[40];
        if (s->item == skip_item)
            continue;
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
        if (s->kind == 0) {
            it->gone = false;
            recall_item_use(it, s->t, H);
        } else if (s->kind == 1) {
            it->gone = false;
            recall_item_pin(it, s->t, id, s->conf, NULL);
        } else {
            recall_item_clear(it);
            it->gone = true;
        }
        if (boundaries && rnd() % 4 == 0) {
            for (int k = 0; k < NKEYS; k++) {
                char *text = recall_item_state_text(out[k]);
                recall_item_t *again = recall_item_new(out[k]->id, out[k]->user, out[k]->category, out[k]->key, text);
                again->gone = out[k]->gone;
                free(text);
                recall_item_free(out[k]);
                out[k] = again;
            }
        }
    }
    CU_ASSERT_TRUE(recall_items_score(out, NKEYS, H));
}

static void test_random_streams(void)
{
    step_t steps[401]; /* room for the closing forget */

    for (int round = 0; round < 200; round++) {
        int n = 1 + (int)(rnd() % 400), victim = (int)(rnd() % NKEYS);
        recall_item_t *once[NKEYS], *batched[NKEYS], *forgot[NKEYS], *never[NKEYS];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            steps[i].item = (int)(rnd() % NKEYS);
            steps[i].kind = rnd() % 10 == 0 ? 1 : rnd() % 25 == 0 ? 2 : 0;
            steps[i].t = T0 + (int64_t)(rnd() % (uint64_t)(720 * DAY_US));
            steps[i].conf = (double)(rnd() % 101) / 100.0;
        }
        run(steps, n, false, -1, once);
        run(steps, n, true, -1, batched);
        for (int k = 0; k < NKEYS; k++) {
            char *a = recall_item_state_text(once[k]), *b = recall_item_state_text(batched[k]);
            char *da = recall_item_data(once[k]), *db = recall_item_data(batched[k]);
            CU_ASSERT_STRING_EQUAL(a, b);
            CU_ASSERT_STRING_EQUAL(da, db);
            CU_ASSERT_EQUAL(memcmp(&once[k]->confidence, &batched[k]->confidence, sizeof(double)), 0);
            CU_ASSERT_TRUE(once[k]->confidence >= 0 && once[k]->confidence <= 1);
            sum += once[k]->confidence;
            free(a), free(b), free(da), free(db);
        }
        CU_ASSERT_TRUE(sum <= 1.0 + 1e-12);
        /* Forgetting an item at the end leaves what its events never
         * happening leaves: every other item's state and confidence. */
        steps[n].item = victim;
        steps[n].kind = 2;
        steps[n].t = T0;
        run(steps, n + 1, true, -1, forgot);
        run(steps, n, false, victim, never);
        never[victim]->gone = true;
        CU_ASSERT_TRUE(recall_items_score(never, NKEYS, H));
        for (int k = 0; k < NKEYS; k++) {
            char *a = recall_item_state_text(forgot[k]), *b = recall_item_state_text(never[k]);
            CU_ASSERT_STRING_EQUAL(a, b);
            CU_ASSERT_EQUAL(forgot[k]->confidence, never[k]->confidence);
            free(a), free(b);
        }
        for (int k = 0; k < NKEYS; k++) {
            recall_item_free(once[k]);
            recall_item_free(batched[k]);
            recall_item_free(forgot[k]);
            recall_item_free(never[k]);
        }
    }
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"uses are counted, first and last seen", test_counting},
        {"a use weighs half after one half-life", test_half_life},
        {"a year-old preference loses to this week's", test_decay_year_vs_week},
        {"little evidence is shrunk toward zero; one use is 0.50", test_shrinkage},
        {"confidence is a share of the category's total", test_category_totals},
        {"rounded down: a category never adds up past 1", test_rounding_never_exceeds_one},
        {"recall.set pins; recall.forgotten removes it and its evidence", test_pin_and_forget},
        {"running mean and spread; most used settings", test_moments_and_settings},
        {"evidence is the same in any order and any batching", test_evidence_order_free},
        {"random streams: bounds, batch-independence, forgetting leaves no trace", test_random_streams},
        {NULL, NULL},
    };
    return prime_test_run("recall", NULL, NULL, tests);
}
