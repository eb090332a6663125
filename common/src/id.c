#include "vtn/id.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int vtn_random64(uint64_t *out)
{
    if (getrandom(out, sizeof *out, 0) != (ssize_t)sizeof *out)
        return -EIO;
    return 0;
}

int vtn_id_new(const char *prefix, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[10];
    size_t plen = strlen(prefix);
    if (plen == 0 || outlen < plen + 1 + 2 * sizeof rnd + 1)
        return -EINVAL;
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return -EIO;
    memcpy(out, prefix, plen);
    out[plen] = '-';
    char *p = out + plen + 1;
    for (size_t i = 0; i < sizeof rnd; i++) {
        *p++ = hex[rnd[i] >> 4];
        *p++ = hex[rnd[i] & 15];
    }
    *p = '\0';
    return 0;
}

uint64_t vtn_fnv1a64(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}
