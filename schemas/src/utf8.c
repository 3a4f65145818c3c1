#include "prime/utf8.h"

#include <string.h>

size_t prime_utf8_cut(char *s, size_t max)
{
    size_t n = strlen(s), lead, need;

    if (n > max)
        n = max;
    /* The last sequence's lead byte (at most three continuation bytes
     * back), and whether all its bytes are there. */
    lead = n;
    while (lead > 0 && n - lead < 4 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead > 0 && ((unsigned char)s[lead - 1] & 0x80)) {
        unsigned char c = (unsigned char)s[lead - 1];
        need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (n - (lead - 1) < need)
            n = lead - 1;
    }
    s[n] = '\0';
    return n;
}
