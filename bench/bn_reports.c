/* reports mode: the consumer that proves what was stored. It reads the
 * telemetry stream through a consumer group of its own, as a data platform
 * does (XREADGROUP, then XACK of each batch; docs/reports.md), and matches
 * every entry to the interval the bench sent: each interval of an update
 * answered 200 must be found exactly once. Blocking hiredis, after the
 * measured phase, so its reads are not charged to the ingestion. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "vtn/keys.h"

#include "bn_internal.h"

#define REP_BATCH 5000        /* entries per XREADGROUP */
#define REP_MAX_ROUNDS 100000 /* 500 M entries: the loop ends whatever Redis answers */

static int ven_cmp(const void *a, const void *b)
{
    return strcmp(((const bn_rep_ven *)a)->ven_id, ((const bn_rep_ven *)b)->ven_id);
}

void bn_rep_sort(bn_rep_ven *v, uint32_t n)
{
    qsort(v, n, sizeof *v, ven_cmp);
}

/* The value of field name in fv, or NULL; *len its length. */
static const char *field(const char *const *fv, const size_t *fvlen, size_t nfv, const char *name,
                         size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 1 < nfv; i += 2)
        if (fvlen[i] == nl && memcmp(fv[i], name, nl) == 0) {
            *len = fvlen[i + 1];
            return fv[i + 1];
        }
    return NULL;
}

static int eq(const char *p, size_t n, const char *s)
{
    return p && strlen(s) == n && memcmp(p, s, n) == 0;
}

/* One interval of an entry: [rID, dtstart ms, duration ms, value, quality?]. */
static void tally_interval(bn_rep_ven *w, uint32_t k, json_t *iv, bn_rep_tally *t)
{
    const char *rid = json_string_value(json_array_get(iv, 0));
    const char *val = json_string_value(json_array_get(iv, 3));
    long long ms = json_integer_value(json_array_get(iv, 1));
    long long off = ms - (long long)BN_REPORT_BASE_S * 1000;
    char want[24];
    t->values++;
    if (w == NULL || rid == NULL || strcmp(rid, BN_REPORT_RID) != 0 || val == NULL ||
        json_integer_value(json_array_get(iv, 2)) != 60000 || off < 0 || off % 60000 != 0 ||
        off / 60000 >= (long long)w->nupd * k) {
        t->foreign++;
        return;
    }
    uint32_t j = (uint32_t)(off / 60000);
    bn_report_value(want, sizeof want, j);
    if (strcmp(val, want) != 0) {
        t->foreign++; /* the interval, but not the value sent */
        return;
    }
    if (w->seen[j] < 255)
        w->seen[j]++;
}

void bn_rep_entry(bn_rep_ven *v, uint32_t n, uint32_t k, const char *const *fv, const size_t *fvlen,
                  size_t nfv, bn_rep_tally *t)
{
    size_t lven = 0, lrr = 0, li = 0;
    const char *ven = field(fv, fvlen, nfv, "ven", &lven);
    const char *rr = field(fv, fvlen, nfv, "rr", &lrr);
    const char *ivs = field(fv, fvlen, nfv, "i", &li);
    t->entries++;
    char id[160];
    json_t *a = ivs ? json_loadb(ivs, li, 0, NULL) : NULL;
    if (ven == NULL || lven >= sizeof id || !json_is_array(a)) {
        t->foreign++;
        json_decref(a);
        return;
    }
    memcpy(id, ven, lven);
    id[lven] = '\0';
    bn_rep_ven key = {.ven_id = id};
    bn_rep_ven *w = n ? bsearch(&key, v, n, sizeof *v, ven_cmp) : NULL;
    if (w && !eq(rr, lrr, w->rr_id))
        w = NULL;
    for (size_t i = 0; i < json_array_size(a); i++)
        tally_interval(w, k, json_array_get(a, i), t);
    json_decref(a);
}

void bn_rep_finish(const bn_rep_ven *v, uint32_t n, uint32_t k, bn_rep_tally *t)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t s = 0; s < v[i].nupd; s++)
            for (uint32_t q = 0; q < k; q++) {
                uint8_t c = v[i].seen[(size_t)s * k + q];
                if (c > 1)
                    t->doubled += c - 1u;
                if (!v[i].ok[s]) {
                    t->unconfirmed += c > 0;
                    continue;
                }
                t->confirmed++;
                if (c)
                    t->stored++;
                else
                    t->lost++;
            }
}

static redisContext *connect_to(const struct sockaddr_storage *a, char *err, size_t errlen)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        port = ntohs(s->sin_port);
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
    }
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout(ip, port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "redis %s:%d: %.100s", ip, port, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

int bn_rep_group(const struct sockaddr_storage *redis, const char *group, char *err, size_t errlen)
{
    redisContext *c = connect_to(redis, err, errlen);
    if (c == NULL)
        return -EIO;
    redisReply *r = redisCommand(c, "XGROUP CREATE %s %s $ MKSTREAM", VTN_KEY_TELEMETRY, group);
    int rc = 0;
    if (r == NULL || (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)) {
        snprintf(err, errlen, "XGROUP CREATE: %.100s", r ? r->str : c->errstr);
        rc = -EIO;
    }
    freeReplyObject(r);
    redisFree(c);
    return rc;
}

long long bn_rep_xlen(const struct sockaddr_storage *redis)
{
    char err[128];
    redisContext *c = connect_to(redis, err, sizeof err);
    if (c == NULL)
        return -EIO;
    redisReply *r = redisCommand(c, "XLEN %s", VTN_KEY_TELEMETRY);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -EIO;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Tallies one XREADGROUP reply and acknowledges its ids. Returns the entries
 * in it (0: the group has nothing more), or <0. */
static int consume_batch(redisContext *c, const char *group, redisReply *r, bn_rep_ven *v,
                         uint32_t n, uint32_t k, bn_rep_tally *t)
{
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->elements != 2)
        return -EPROTO;
    redisReply *list = r->element[0]->element[1];
    if (list->type != REDIS_REPLY_ARRAY)
        return -EPROTO;
    if (list->elements == 0)
        return 0;
    const char **argv = calloc(list->elements + 3, sizeof *argv);
    size_t *argl = calloc(list->elements + 3, sizeof *argl);
    int rc = -ENOMEM;
    if (argv == NULL || argl == NULL)
        goto out;
    size_t argc = 0;
    argv[argc++] = "XACK";
    argv[argc++] = VTN_KEY_TELEMETRY;
    argv[argc++] = group;
    for (size_t i = 0; i < list->elements; i++) {
        redisReply *e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING) {
            rc = -EPROTO;
            goto out;
        }
        redisReply *f = e->element[1];
        const char *fv[32];
        size_t fl[32], nf = 0;
        for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j < f->elements && nf < 32; j++) {
            fv[nf] = f->element[j]->str;
            fl[nf++] = f->element[j]->len;
        }
        bn_rep_entry(v, n, k, fv, fl, nf, t);
        argv[argc] = e->element[0]->str;
        argl[argc++] = e->element[0]->len;
    }
    for (size_t i = 0; i < 3; i++)
        argl[i] = strlen(argv[i]);
    redisReply *a = redisCommandArgv(c, (int)argc, argv, argl);
    rc = a && a->type == REDIS_REPLY_INTEGER ? (int)list->elements : -EIO;
    freeReplyObject(a);
out:
    free(argv);
    free(argl);
    return rc;
}

int bn_rep_consume(const struct sockaddr_storage *redis, const char *group, bn_rep_ven *v,
                   uint32_t n, uint32_t k, bn_rep_tally *t, char *err, size_t errlen)
{
    redisContext *c = connect_to(redis, err, errlen);
    if (c == NULL)
        return -EIO;
    bn_rep_sort(v, n);
    int rc = 0;
    for (int round = 0; round < REP_MAX_ROUNDS; round++) {
        redisReply *r = redisCommand(c, "XREADGROUP GROUP %s bench COUNT %d STREAMS %s >", group,
                                     REP_BATCH, VTN_KEY_TELEMETRY);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "XREADGROUP: %.100s", r ? r->str : c->errstr);
            freeReplyObject(r);
            rc = -EIO;
            break;
        }
        rc = consume_batch(c, group, r, v, n, k, t);
        freeReplyObject(r);
        if (rc <= 0) {
            if (rc < 0)
                snprintf(err, errlen, "XREADGROUP/XACK: %s", strerror(-rc));
            break;
        }
        rc = 0;
    }
    if (rc == 0) {
        redisReply *p = redisCommand(c, "XPENDING %s %s", VTN_KEY_TELEMETRY, group);
        t->pending = p && p->type == REDIS_REPLY_ARRAY && p->elements > 0 &&
                             p->element[0]->type == REDIS_REPLY_INTEGER
                         ? p->element[0]->integer
                         : -1;
        freeReplyObject(p);
        bn_rep_finish(v, n, k, t);
    }
    redisFree(c);
    return rc;
}
