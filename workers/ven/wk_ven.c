/* VEN records and their indexes: the registered-VEN and identity check
 * every OpenADR handler makes, the dangling-owner test of an index claim,
 * and the index clean-up after a registration ends or a record goes
 * (docs/redis-keys.md, "Write order"). */
#include <errno.h>
#include <string.h>

#include "wk_ven.h"

wk_rh wk_ven_check_plan(wk_req *q, const char *ven_id)
{
    char k[VTN_KEY_MAX];
    return wk_cmd(q, "HMGET", wk_key_ven(k, ven_id), "r", "fp", NULL);
}

int wk_ven_check(wk_req *q, wk_rh h, const char *ven_id)
{
    char r[WK_ID_MAX + 1], fp[WK_FP_MAX + 1];
    const redisReply *rec = wk_rep(q, h);
    if (!wk_rep_elem(rec, 0, r, sizeof r)) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "venID %s is not registered with this VTN",
                            ven_id);
        return 0;
    }
    wk_rep_elem(rec, 1, fp, sizeof fp);
    /* Strict when TLS gives us an identity: the VEN must be bound to exactly this
     * certificate. Without one (plain HTTP) there is nothing to compare. */
    if (q->fp[0] && strcmp(fp, q->fp) != 0) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate is not the one bound to venID %s", ven_id);
        return 0;
    }
    return 1;
}

wk_rh wk_ven_lookup(wk_req *q, enum wk_ven_index by, const char *value)
{
    char k[VTN_KEY_MAX];
    const char *key = by == WK_VEN_BY_FP    ? wk_key_fp(k, value)
                      : by == WK_VEN_BY_REG ? wk_key_reg(k, value)
                                            : wk_key_name(k, value);
    return wk_cmd(q, "GET", key, NULL);
}

int wk_ven_found(const wk_req *q, wk_rh h, char *out, size_t outlen)
{
    return wk_rep_str(wk_rep(q, h), out, outlen);
}

int wk_ven_gate_pass(wk_req *q, wk_ven_gate *g, const char *ven_id)
{
    if (!ven_id[0])
        return 1;
    if (!g->asked) {
        g->asked = 1;
        if ((g->rec = wk_ven_check_plan(q, ven_id)) < 0)
            wk_reply_no_room(q);
        return 0;
    }
    return wk_ven_check(q, g->rec, ven_id);
}

wk_rh wk_ven_owner_exists(wk_req *q, const char *owner, const char *ven)
{
    char k[VTN_KEY_MAX];
    if (owner[0] == '\0' || strcmp(owner, ven) == 0)
        return 0;
    return wk_cmd(q, "EXISTS", wk_key_ven(k, owner), NULL);
}

/* Compare-and-delete: an index that meanwhile points elsewhere is left alone. */
int wk_ven_index_cleanup(wk_req *q, const char *ven, const char *name, const char *fp,
                         const char *reg, int all)
{
    char k[VTN_KEY_MAX];
    int bad = 0;
    if (reg[0])
        bad |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_reg(k, reg), ven, NULL) < 0;
    if (all) {
        if (name[0])
            bad |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_name(k, name), ven, NULL) < 0;
        if (fp[0])
            bad |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_fp(k, fp), ven, NULL) < 0;
        bad |= wk_cmd(q, "ZREM", VTN_KEY_VENS, ven, NULL) < 0;
        bad |= wk_cmd(q, "ZREM", VTN_KEY_VENSONLINE, ven, NULL) < 0;
    }
    return bad ? -ENOBUFS : 0;
}

int wk_ven_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > WK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}
