/* Key names (docs/redis-keys.md) and small string helpers. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vtn/fingerprint.h"
#include "vtn/hex.h"
#include "vtn/keys.h"
#include "wk_internal.h"

/* The worker's key names are the shared data model's (vtn/keys.h); these
 * keep the worker's names until its callers use vtn_key_build directly. */
_Static_assert(WK_KEY_MAX == VTN_KEY_MAX, "wk_key_* buffers are vtn_key_* buffers");
_Static_assert(WK_QUEUE_MAX == VTN_QUEUE_MAX, "one queue cap, in vtn/keys.h");
_Static_assert(WK_MEMO_TTL_S == VTN_TTL_MEMO_S, "one memo lifetime, in vtn/keys.h");

const char *wk_key_ven(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VEN, ven_id, NULL);
}

const char *wk_key_venq(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VENQ, ven_id, NULL);
}

const char *wk_key_venpm(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VENPM, ven_id, NULL);
}

const char *wk_key_venreq(char *out, const char *ven_id, const char *rid)
{
    return vtn_key_build(out, VTN_KEY_VENREQ, ven_id, rid);
}

const char *wk_key_name(char *out, const char *name)
{
    return vtn_key_build(out, VTN_KEY_VENNAME, name, NULL);
}

const char *wk_key_fp(char *out, const char *fp)
{
    return vtn_key_build(out, VTN_KEY_VENFP, fp, NULL);
}

const char *wk_key_reg(char *out, const char *reg_id)
{
    return vtn_key_build(out, VTN_KEY_VENREG, reg_id, NULL);
}

const char *wk_key_req(char *out, const char *rid)
{
    return vtn_key_build(out, VTN_KEY_REQ, rid, NULL);
}

const char *wk_key_cert(char *out, const char *serial)
{
    return vtn_key_build(out, VTN_KEY_CERT, serial, NULL);
}

const char *wk_key_vencerts(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VENCERTS, ven_id, NULL);
}

const char *wk_key_certreq(char *out, const char *rid)
{
    return vtn_key_build(out, VTN_KEY_CERTREQ, rid, NULL);
}

const char *wk_key_revokedfp(char *out, const char *fp)
{
    return vtn_key_build(out, VTN_KEY_REVOKEDFP, fp, NULL);
}

const char *wk_key_ca_revoked(char *out, const char *ca_id)
{
    return vtn_key_build(out, VTN_KEY_CA_REVOKED, ca_id, NULL);
}

const char *wk_key_ca_crlnumber(char *out, const char *ca_id)
{
    return vtn_key_build(out, VTN_KEY_CA_CRLNUMBER, ca_id, NULL);
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
