/* vtn/auth.h: the bearer token check. */
#include "vtn/auth.h"

#include <strings.h>

int vtn_bearer_ok(const char *header, size_t len, const char *token, size_t token_len)
{
    if (token_len == 0 || len < 7 || strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    const char *t = header + 7;
    size_t n = len - 7;
    while (n && *t == ' ') {
        t++;
        n--;
    }
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    /* Constant time in the token's length: no early exit on the first
     * difference, nor on a length that differs. */
    unsigned diff = (unsigned)(n != token_len);
    for (size_t i = 0; i < token_len; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < n ? t[i] : 0);
    return diff == 0;
}
