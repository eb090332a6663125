/* Key names (docs/redis-keys.md) and small string helpers. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vtn/fingerprint.h"
#include "vtn/hex.h"
#include "wk_internal.h"

/* Callers pass values already capped by the codec or the API parser
 * (WK_ID_MAX, WK_NAME_MAX, WK_FP_MAX), so WK_KEY_MAX always fits; snprintf
 * truncation would only make a lookup miss, never overflow. */
const char *wk_key_ven(char *out, const char *ven_id)
{
    snprintf(out, WK_KEY_MAX, "ven:{%s}", ven_id);
    return out;
}

const char *wk_key_venq(char *out, const char *ven_id)
{
    snprintf(out, WK_KEY_MAX, "venq:{%s}", ven_id);
    return out;
}

const char *wk_key_venpm(char *out, const char *ven_id)
{
    snprintf(out, WK_KEY_MAX, "venpm:{%s}", ven_id);
    return out;
}

const char *wk_key_venreq(char *out, const char *ven_id, const char *rid)
{
    snprintf(out, WK_KEY_MAX, "venreq:{%s}:%s", ven_id, rid);
    return out;
}

const char *wk_key_name(char *out, const char *name)
{
    snprintf(out, WK_KEY_MAX, "vtn:venname:%s", name);
    return out;
}

const char *wk_key_fp(char *out, const char *fp)
{
    snprintf(out, WK_KEY_MAX, "vtn:venfp:%s", fp);
    return out;
}

const char *wk_key_reg(char *out, const char *reg_id)
{
    snprintf(out, WK_KEY_MAX, "vtn:venreg:%s", reg_id);
    return out;
}

const char *wk_key_req(char *out, const char *rid)
{
    snprintf(out, WK_KEY_MAX, "vtn:req:%s", rid);
    return out;
}

const char *wk_key_cert(char *out, const char *serial)
{
    snprintf(out, WK_KEY_MAX, "vtn:cert:%s", serial);
    return out;
}

const char *wk_key_vencerts(char *out, const char *ven_id)
{
    snprintf(out, WK_KEY_MAX, "vencerts:{%s}", ven_id);
    return out;
}

const char *wk_key_certreq(char *out, const char *rid)
{
    snprintf(out, WK_KEY_MAX, "vtn:certreq:%s", rid);
    return out;
}

const char *wk_key_revokedfp(char *out, const char *fp)
{
    snprintf(out, WK_KEY_MAX, "vtn:revokedfp:%s", fp);
    return out;
}

/* The two keys of one CA share its hash tag: the crl script reads and bumps
 * them together, so a CRL number never goes with an older list. */
const char *wk_key_ca_revoked(char *out, const char *ca_id)
{
    snprintf(out, WK_KEY_MAX, "vtn:ca:{%s}:revoked", ca_id);
    return out;
}

const char *wk_key_ca_crlnumber(char *out, const char *ca_id)
{
    snprintf(out, WK_KEY_MAX, "vtn:ca:{%s}:crlnumber", ca_id);
    return out;
}

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
