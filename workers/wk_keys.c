/* Small string helpers: fingerprints, ids, pagination cursors. (Key names
 * are vtn_key_build on vtn/keys.h patterns: wk_key_* in wk_internal.h.) */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vtn/fingerprint.h"
#include "vtn/hex.h"
#include "wk_internal.h"

int wk_fp_normalize(const char *in, size_t n, char *out, size_t outlen)
{
    /* The common form (vtn/fingerprint.h) so workers and gateway agree: 20 upper-case
     * hex digits; a full SHA-256 fingerprint is reduced to its last 10 bytes. */
    char tmp[256];
    if (n == 0 || n >= sizeof tmp || memchr(in, '\0', n))
        return -EINVAL;
    memcpy(tmp, in, n);
    tmp[n] = '\0';
    return vtn_fingerprint_normalize(tmp, out, outlen) < 0 ? -EINVAL : 0;
}

void wk_fp_pretty(const char *fp, char *out, size_t outlen)
{
    char f[VTN_FINGERPRINT_SIZE];
    if (vtn_fingerprint_format(fp, f) < 0)
        f[0] = '\0';
    snprintf(out, outlen, "%s", f);
}

int wk_id_valid(const char *s, size_t n)
{
    if (n == 0 || n > WK_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':')
            return 0;
    }
    return 1;
}

int wk_cursor_encode(const char *ven_id, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(ven_id);
    if (outlen < 2 * n + 1)
        return -ENOBUFS;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[(unsigned char)ven_id[i] >> 4];
        out[2 * i + 1] = hex[(unsigned char)ven_id[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

int wk_cursor_decode(const char *cursor, char *out, size_t outlen)
{
    size_t n = strlen(cursor);
    if (n == 0 || outlen == 0 || vtn_hex_decode(cursor, n, (unsigned char *)out, outlen - 1) < 0)
        return -EINVAL;
    out[n / 2] = '\0';
    /* A cursor is always a venID we handed out: anything else is forged. */
    return wk_id_valid(out, n / 2) ? 0 : -EINVAL;
}

/* Digits from s[*i] up to a space or the end: the number, 0 when anything
 * else comes first; *i moves past the space. */
static long long digits(const char *s, size_t n, size_t *i)
{
    long long v = 0;
    int ok = *i < n && s[*i] != ' ';
    for (int k = 0; *i < n && s[*i] != ' '; (*i)++, k++) {
        if (s[*i] < '0' || s[*i] > '9' || k >= 18)
            ok = 0;
        else
            v = v * 10 + (s[*i] - '0');
    }
    if (*i < n)
        (*i)++;
    return ok ? v : 0;
}

void wk_last_poll_parse(const char *s, size_t n, long long *ms, long long *freq)
{
    size_t i = 0;
    *ms = digits(s, n, &i);
    *freq = digits(s, n, &i);
}
