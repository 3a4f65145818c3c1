/* A small deterministic mutation driver for the fuzz targets when libFuzzer
 * is not linked (gcc builds, ctest): it starts from the target's seeds and
 * applies byte flips, truncations, insertions, splices and interesting
 * values for a fixed number of rounds. With a directory or file arguments
 * it replays those inputs instead (crash reproduction).
 *
 *   fuzz_x_replay [ROUNDS]      mutate the seeds ROUNDS times (default 20000)
 *   fuzz_x_replay FILE...       run each file once
 *   fuzz_x_replay --write-seeds DIR   write the seeds as files, libFuzzer's
 *                               starting corpus (scripts/fuzz) */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEEDS 512
#define MAX_INPUT 8192

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS], nseeds;
static uint64_t state = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static void add_seed(const uint8_t *data, size_t size)
{
    if (nseeds == MAX_SEEDS || size > MAX_INPUT)
        return;
    seeds[nseeds] = malloc(size ? size : 1);
    memcpy(seeds[nseeds], data, size);
    seed_len[nseeds++] = size;
}

static size_t mutate(uint8_t *buf, size_t len)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, '"', '\\', '{', '}', '[', ']', ','};
    int ops = 1 + (int)(next() % 4);

    for (int k = 0; k < ops; k++) {
        size_t pos = len ? next() % len : 0;
        switch (next() % 6) {
        case 0: /* flip a bit */
            if (len)
                buf[pos] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1: /* truncate */
            len = pos;
            break;
        case 2: /* interesting byte */
            if (len)
                buf[pos] = interesting[next() % sizeof(interesting)];
            break;
        case 3: /* insert a byte */
            if (len < MAX_INPUT) {
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = (uint8_t)next();
                len++;
            }
            break;
        case 4: { /* splice from another seed */
            size_t s = next() % nseeds, from = seed_len[s] ? next() % seed_len[s] : 0;
            size_t n = seed_len[s] - from;
            if (pos + n > MAX_INPUT)
                n = MAX_INPUT - pos;
            memcpy(buf + pos, seeds[s] + from, n);
            if (pos + n > len)
                len = pos + n;
            break;
        }
        default: /* overwrite a run with a varint-looking byte */
            for (size_t i = pos; i < len && i < pos + 4; i++)
                buf[i] = (uint8_t)(0x80 | next());
            break;
        }
    }
    return len;
}

static int replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 20];
    size_t n;

    if (!f) {
        perror(path);
        return 1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

static int write_seeds(const char *dir)
{
    char path[4096];

    fuzz_seeds(add_seed);
    for (size_t i = 0; i < nseeds; i++) {
        FILE *f;
        snprintf(path, sizeof(path), "%s/seed-%04zu", dir, i);
        if (!(f = fopen(path, "wb")) || fwrite(seeds[i], 1, seed_len[i], f) != seed_len[i] || fclose(f)) {
            perror(path);
            return 1;
        }
    }
    printf("%zu seeds written to %s\n", nseeds, dir);
    return 0;
}

int main(int argc, char **argv)
{
    static uint8_t buf[MAX_INPUT + 8];
    long rounds = 20000;

    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        return write_seeds(argv[2]);

    if (argc > 1 && (argv[1][0] < '0' || argv[1][0] > '9')) {
        for (int i = 1; i < argc; i++)
            if (replay(argv[i]))
                return 1;
        printf("%d inputs replayed\n", argc - 1);
        return 0;
    }
    if (argc > 1)
        rounds = atol(argv[1]);
    fuzz_seeds(add_seed);
    if (!nseeds) {
        fprintf(stderr, "no seeds\n");
        return 1;
    }
    for (size_t i = 0; i < nseeds; i++)
        LLVMFuzzerTestOneInput(seeds[i], seed_len[i]);
    for (long r = 0; r < rounds; r++) {
        size_t s = next() % nseeds, len = seed_len[s];
        memcpy(buf, seeds[s], len);
        len = mutate(buf, len);
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%zu seeds, %ld mutated inputs: no crash\n", nseeds, rounds);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i]);
    return 0;
}
