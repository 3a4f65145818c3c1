#include "prime/uuid.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void format_uuid(const unsigned char b[16], char out[PRIME_UUID_TEXT])
{
    snprintf(out, PRIME_UUID_TEXT,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
             b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int prime_uuid_v7(char out[PRIME_UUID_TEXT])
{
    unsigned char b[16];
    struct timespec now;
    uint64_t ms;
    size_t got = 0;

    while (got < 10) {
        ssize_t n = getrandom(b + 6 + got, 10 - got, 0);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0)
            got += (size_t)n;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* RFC variant */
    format_uuid(b, out);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* SHA-1 fetched once: OpenSSL 3 looks the algorithm up again at every
 * EVP_DigestInit_ex(EVP_sha1()), which cost more than the hashing. */
static EVP_MD *sha1;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void fetch_sha1(void)
{
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

int prime_uuid_v5(const char *namespace_uuid, const void *name, size_t len, char out[PRIME_UUID_TEXT])
{
    unsigned char ns[16], digest[EVP_MAX_MD_SIZE], b[16];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx;
    int k = 0, ok;

    for (const char *p = namespace_uuid; *p && k < 32; p++) {
        int hi, lo;
        if (*p == '-')
            continue;
        if ((hi = hex_value(p[0])) < 0 || !p[1] || (lo = hex_value(p[1])) < 0)
            return -1;
        ns[k / 2] = (unsigned char)(hi << 4 | lo);
        k += 2;
        p++;
    }
    pthread_once(&sha1_once, fetch_sha1);
    if (k != 32 || !sha1 || !(ctx = EVP_MD_CTX_new()))
        return -1;
    ok = EVP_DigestInit_ex(ctx, sha1, NULL) && EVP_DigestUpdate(ctx, ns, 16) &&
         EVP_DigestUpdate(ctx, name, len) && EVP_DigestFinal_ex(ctx, digest, &dlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || dlen < 16)
        return -1;
    memcpy(b, digest, 16);
    b[6] = (unsigned char)(0x50 | (b[6] & 0x0f)); /* version 5 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* RFC variant */
    format_uuid(b, out);
    return 0;
}

bool prime_uuid_valid(const char *s, size_t len)
{
    if (!s || len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (hex_value(s[i]) < 0) {
            return false;
        }
    }
    return true;
}

void prime_uuid_canonical(const char *uuid, char out[PRIME_UUID_TEXT])
{
    size_t i = 0;
    for (; uuid && uuid[i] && i < PRIME_UUID_TEXT - 1; i++)
        out[i] = (char)tolower((unsigned char)uuid[i]);
    out[i] = '\0';
}
