/* Key builders over the patterns of vtn/keys.h (docs/redis-keys.md). */
#include <string.h>

#include "vtn/keys.h"

const char *vtn_key_build(char *out, const char *pattern, const char *a, const char *b)
{
    const char *parts[2] = {a, b};
    size_t o = 0, np = 0;
    for (const char *p = pattern; *p && o < VTN_KEY_MAX - 1; p++) {
        const char *end = *p == '<' ? strchr(p, '>') : NULL;
        if (end == NULL) {
            out[o++] = *p;
            continue;
        }
        /* A missing part leaves the key empty there: a lookup that misses
         * beats a key that silently names another record. */
        const char *v = np < 2 && parts[np] ? parts[np] : "";
        np++;
        size_t n = strlen(v);
        if (n > VTN_KEY_MAX - 1 - o)
            n = VTN_KEY_MAX - 1 - o;
        memcpy(out + o, v, n);
        o += n;
        p = end;
    }
    out[o] = '\0';
    return out;
}

const char *vtn_key_ven(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VEN, ven_id, NULL);
}

const char *vtn_key_venq(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VENQ, ven_id, NULL);
}

const char *vtn_key_venpm(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VENPM, ven_id, NULL);
}

const char *vtn_key_venreq(char *out, const char *ven_id, const char *rid)
{
    return vtn_key_build(out, VTN_KEY_VENREQ, ven_id, rid);
}

const char *vtn_key_vencerts(char *out, const char *ven_id)
{
    return vtn_key_build(out, VTN_KEY_VENCERTS, ven_id, NULL);
}

const char *vtn_key_venname(char *out, const char *ven_name)
{
    return vtn_key_build(out, VTN_KEY_VENNAME, ven_name, NULL);
}

const char *vtn_key_venfp(char *out, const char *fp)
{
    return vtn_key_build(out, VTN_KEY_VENFP, fp, NULL);
}

const char *vtn_key_venreg(char *out, const char *reg_id)
{
    return vtn_key_build(out, VTN_KEY_VENREG, reg_id, NULL);
}

const char *vtn_key_req(char *out, const char *rid)
{
    return vtn_key_build(out, VTN_KEY_REQ, rid, NULL);
}

const char *vtn_key_cert(char *out, const char *serial)
{
    return vtn_key_build(out, VTN_KEY_CERT, serial, NULL);
}

const char *vtn_key_certreq(char *out, const char *rid)
{
    return vtn_key_build(out, VTN_KEY_CERTREQ, rid, NULL);
}

const char *vtn_key_revokedfp(char *out, const char *fp)
{
    return vtn_key_build(out, VTN_KEY_REVOKEDFP, fp, NULL);
}

const char *vtn_key_ca_revoked(char *out, const char *ca_id)
{
    return vtn_key_build(out, VTN_KEY_CA_REVOKED, ca_id, NULL);
}

const char *vtn_key_ca_crlnumber(char *out, const char *ca_id)
{
    return vtn_key_build(out, VTN_KEY_CA_CRLNUMBER, ca_id, NULL);
}
