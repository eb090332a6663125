/* A per-worker cache of event views (wk_event_json's result), so that a
 * poll that re-sends the same events does not parse each stored body and
 * build its view again.
 *
 * An entry is found by eventID and is only used when the record just read
 * (the HGETALL reply) is byte for byte the one it was built from and the
 * status at now is the one it holds: the view is a function of those two
 * (and the id) alone, so a hit returns exactly what wk_event_json would.
 * A modify or cancel bumps the modificationNumber (the record changes), a
 * time-driven status change changes the status, a VEN's answer changes the
 * counts: each is a miss that rebuilds the entry. Nothing is kept but what
 * Redis said last; the worker stays stateless (a miss reads Redis as
 * before, and the record is read on every poll either way).
 *
 * Bounded by entries and by bytes (the record's copy, its view counted at
 * twice that); the least recently used entry goes first. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/id.h"
#include "wk_internal.h"

typedef struct wk_evcache_entry {
    char *id;
    uint64_t id_hash;
    unsigned char *rec; /* the record's fields and values, each as <len:4><bytes> */
    size_t rec_len;
    int status;
    json_t *view;
    uint64_t used; /* the cache's tick at the last hit or insert */
} wk_evcache_entry;

struct wk_evcache {
    wk_evcache_entry *e;
    int n, max;
    size_t bytes, max_bytes;
    uint64_t tick;
    wk_evcache_stats stats;
};

int wk_evcache_new(wk_evcache **out, int max_entries, size_t max_bytes)
{
    *out = NULL;
    if (max_entries <= 0 || max_bytes == 0)
        return -EINVAL;
    wk_evcache *c = calloc(1, sizeof *c);
    if (c == NULL || (c->e = calloc((size_t)max_entries, sizeof *c->e)) == NULL) {
        free(c);
        return -ENOMEM;
    }
    c->max = max_entries;
    c->max_bytes = max_bytes;
    *out = c;
    return 0;
}

/* What an entry counts against the byte bound. */
static size_t entry_cost(const wk_evcache_entry *x)
{
    return strlen(x->id) + 3 * x->rec_len;
}

static void entry_drop(wk_evcache *c, int i)
{
    wk_evcache_entry *x = &c->e[i];
    c->bytes -= entry_cost(x);
    free(x->id);
    free(x->rec);
    json_decref(x->view);
    c->e[i] = c->e[--c->n]; /* order does not matter: ticks say the age */
    memset(&c->e[c->n], 0, sizeof c->e[c->n]);
}

void wk_evcache_free(wk_evcache **c)
{
    if (*c == NULL)
        return;
    while ((*c)->n > 0)
        entry_drop(*c, 0);
    free((*c)->e);
    free(*c);
    *c = NULL;
}

static uint64_t hash_id(const char *s)
{
    return vtn_fnv1a64(VTN_FNV64_INIT, s);
}

/* The size of h flattened, 0 when it is not a hash reply of strings. */
static size_t rec_size(const redisReply *h)
{
    size_t n = 0;
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return 0;
    for (size_t i = 0; i < h->elements; i++) {
        const redisReply *v = h->element[i];
        if (v->type != REDIS_REPLY_STRING || v->len > UINT32_MAX)
            return 0;
        n += 4 + v->len;
    }
    return n;
}

/* 1 when the flattened rec is the reply h. */
static int rec_same(const unsigned char *rec, size_t len, const redisReply *h)
{
    size_t off = 0;
    for (size_t i = 0; i < h->elements; i++) {
        const redisReply *v = h->element[i];
        uint32_t l;
        if (v->type != REDIS_REPLY_STRING || off + 4 + v->len > len)
            return 0;
        memcpy(&l, rec + off, 4);
        if (l != v->len || memcmp(rec + off + 4, v->str, v->len) != 0)
            return 0;
        off += 4 + v->len;
    }
    return off == len;
}

static int find(const wk_evcache *c, const char *id, uint64_t hid)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].id_hash == hid && strcmp(c->e[i].id, id) == 0)
            return i;
    return -1;
}

json_t *wk_evcache_get(wk_evcache *c, const char *id, const redisReply *h, int64_t now, int *status)
{
    int i = find(c, id, hash_id(id));
    if (i < 0 || !rec_same(c->e[i].rec, c->e[i].rec_len, h)) {
        c->stats.misses++;
        return NULL;
    }
    wk_evcache_entry *x = &c->e[i];
    /* The status at now, from the record's times and the view's near window. */
    char v[8];
    int cancelled = strcmp(wk_hfield_str(h, VTN_F_EVENT_CANCELLED, v, sizeof v), "1") == 0;
    int stt = wk_event_status(now, cancelled, wk_hfield_int(h, VTN_F_EVENT_START),
                              wk_hfield_int(h, VTN_F_EVENT_END), wk_event_near_ms(x->view));
    if (stt != x->status) {
        c->stats.misses++;
        return NULL;
    }
    x->used = ++c->tick;
    c->stats.hits++;
    if (status)
        *status = stt;
    return json_incref(x->view);
}

int wk_evcache_put(wk_evcache *c, const char *id, const redisReply *h, int status, json_t *view)
{
    size_t len = rec_size(h);
    if (len == 0)
        return -EINVAL;
    uint64_t hid = hash_id(id);
    int i = find(c, id, hid);
    if (i >= 0)
        entry_drop(c, i); /* an older record of the same event */
    wk_evcache_entry x = {.id_hash = hid, .rec_len = len, .status = status, .used = ++c->tick};
    x.id = strdup(id);
    size_t cost = strlen(id) + 3 * len;
    if (cost > c->max_bytes / 8) {
        free(x.id);
        return -E2BIG; /* one huge event would push out all others */
    }
    x.rec = malloc(len);
    if (x.id == NULL || x.rec == NULL) {
        free(x.id);
        free(x.rec);
        return -ENOMEM;
    }
    size_t off = 0;
    for (size_t k = 0; k < h->elements; k++) {
        uint32_t l = (uint32_t)h->element[k]->len;
        memcpy(x.rec + off, &l, 4);
        memcpy(x.rec + off + 4, h->element[k]->str, l);
        off += 4 + l;
    }
    while (c->n > 0 && (c->n == c->max || c->bytes + cost > c->max_bytes)) {
        int old = 0;
        for (int k = 1; k < c->n; k++)
            if (c->e[k].used < c->e[old].used)
                old = k;
        entry_drop(c, old);
        c->stats.evictions++;
    }
    x.view = json_incref(view);
    c->e[c->n++] = x;
    c->bytes += cost;
    return 0;
}

wk_evcache_stats wk_evcache_stats_of(const wk_evcache *c)
{
    wk_evcache_stats s = c->stats;
    s.entries = c->n;
    s.bytes = c->bytes;
    return s;
}

json_t *wk_event_view(wk_worker *w, const char *id, const redisReply *h, int64_t now, int *status)
{
    if (w->evcache == NULL && wk_evcache_new(&w->evcache, WK_EVCACHE_ENTRIES, WK_EVCACHE_BYTES) < 0)
        return wk_event_json(id, h, now, status); /* no cache: as without one */
    int stt = 0;
    json_t *v = wk_evcache_get(w->evcache, id, h, now, &stt);
    if (v == NULL) {
        v = wk_event_json(id, h, now, &stt);
        if (v)
            (void)wk_evcache_put(w->evcache, id, h, stt, v); /* not kept: built again next time */
    }
    if (v && status)
        *status = stt;
    return v;
}
