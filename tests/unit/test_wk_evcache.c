/* The worker's event view cache (core/wk_evcache.c): a hit gives exactly
 * wk_event_json's view, any change of the record or of the status at now
 * is a miss, and entries and bytes stay within their bounds, the least
 * recently used going first. Records are HGETALL replies built by hand. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/keys.h"
#include "wk_internal.h"

#define START 1000000LL
#define END 2000000LL

/* An HGETALL reply: fields and values as given (NULL-terminated). */
typedef struct rec {
    redisReply top;
    redisReply el[32];
    redisReply *ptr[32];
    char text[32][256];
} rec;

static void rec_build(rec *r, const char *const *kv)
{
    memset(r, 0, sizeof *r);
    r->top.type = REDIS_REPLY_ARRAY;
    r->top.element = r->ptr;
    size_t n = 0;
    for (; kv[n]; n++) {
        snprintf(r->text[n], sizeof r->text[n], "%s", kv[n]);
        r->el[n].type = REDIS_REPLY_STRING;
        r->el[n].str = r->text[n];
        r->el[n].len = strlen(r->text[n]);
        r->ptr[n] = &r->el[n];
    }
    r->top.elements = n;
}

/* An event record at modificationNumber mn, optIn count ci. */
static void event_rec(rec *r, const char *mn, const char *ci, const char *body)
{
    char s[24], e[24];
    snprintf(s, sizeof s, "%lld", START);
    snprintf(e, sizeof e, "%lld", END);
    const char *kv[] = {VTN_F_EVENT_BODY,
                        body,
                        VTN_F_EVENT_PROGRAM,
                        "p1",
                        VTN_F_EVENT_MODNUM,
                        mn,
                        VTN_F_EVENT_START,
                        s,
                        VTN_F_EVENT_END,
                        e,
                        VTN_F_EVENT_OPT_IN,
                        ci,
                        VTN_F_EVENT_CREATED,
                        "5",
                        VTN_F_EVENT_MODIFIED,
                        "7",
                        NULL};
    rec_build(r, kv);
}

static const char *BODY = "{\"priority\":1,\"rampUp\":\"PT10M\",\"responseRequired\":\"always\"}";

static wk_evcache *cache(int entries, size_t bytes)
{
    wk_evcache *c = NULL;
    assert_int_equal(wk_evcache_new(&c, entries, bytes), 0);
    return c;
}

/* Looks id up, builds and keeps it on a miss: 1 for a hit. The view is
 * checked against wk_event_json either way. */
static int view(wk_evcache *c, const char *id, rec *r, int64_t now)
{
    int st = -1, want_st = -2;
    json_t *want = wk_event_json(id, &r->top, now, &want_st);
    assert_non_null(want);
    json_t *v = wk_evcache_get(c, id, &r->top, now, &st);
    int hit = v != NULL;
    if (!hit) {
        v = wk_event_json(id, &r->top, now, &st);
        assert_int_equal(wk_evcache_put(c, id, &r->top, st, v), 0);
    }
    assert_true(json_equal(v, want));
    assert_int_equal(st, want_st);
    json_decref(v);
    json_decref(want);
    return hit;
}

static void test_hit_is_the_same_view(void **state)
{
    (void)state;
    wk_evcache *c = cache(8, 1 << 20);
    rec r;
    event_rec(&r, "0", "0", BODY);
    assert_false(view(c, "ev1", &r, 0));
    assert_true(view(c, "ev1", &r, 0));
    assert_true(view(c, "ev1", &r, 1));
    /* another id with the same record is another entry */
    assert_false(view(c, "ev2", &r, 0));
    wk_evcache_stats s = wk_evcache_stats_of(c);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.entries, 2);
    wk_evcache_free(&c);
    assert_null(c);
}

static void test_record_change_misses(void **state)
{
    (void)state;
    wk_evcache *c = cache(8, 1 << 20);
    rec r;
    event_rec(&r, "0", "0", BODY);
    assert_false(view(c, "ev1", &r, 0));
    event_rec(&r, "1", "0", BODY); /* modified: the modificationNumber moved */
    assert_false(view(c, "ev1", &r, 0));
    assert_true(view(c, "ev1", &r, 0));
    event_rec(&r, "1", "3", BODY); /* an answer changed the counts */
    assert_false(view(c, "ev1", &r, 0));
    /* the same mn with another body (never written by the VTN, but Redis says so) */
    event_rec(&r, "1", "3", "{\"priority\":2}");
    assert_false(view(c, "ev1", &r, 0));
    /* a field more */
    const char *kv[] = {
        VTN_F_EVENT_BODY, "{\"priority\":2}", VTN_F_EVENT_MODNUM, "1", VTN_F_EVENT_START,
        "1000000",        VTN_F_EVENT_END,    "2000000",          NULL};
    rec_build(&r, kv);
    assert_false(view(c, "ev1", &r, 0));
    assert_int_equal(wk_evcache_stats_of(c).entries, 1); /* each replaced the last */
    wk_evcache_free(&c);
}

static void test_status_change_misses(void **state)
{
    (void)state;
    wk_evcache *c = cache(8, 1 << 20);
    rec r;
    event_rec(&r, "0", "0", BODY);
    assert_false(view(c, "ev1", &r, 0));             /* far */
    assert_false(view(c, "ev1", &r, START - 60000)); /* near (rampUp PT10M) */
    assert_true(view(c, "ev1", &r, START - 1));      /* still near */
    assert_false(view(c, "ev1", &r, START));         /* active */
    assert_false(view(c, "ev1", &r, END));           /* completed */
    const char *kv[] = {VTN_F_EVENT_BODY,
                        BODY,
                        VTN_F_EVENT_MODNUM,
                        "1",
                        VTN_F_EVENT_START,
                        "1000000",
                        VTN_F_EVENT_END,
                        "2000000",
                        VTN_F_EVENT_CANCELLED,
                        "1",
                        NULL};
    rec_build(&r, kv);
    assert_false(view(c, "ev1", &r, START)); /* cancelled */
    assert_true(view(c, "ev1", &r, START));
    wk_evcache_free(&c);
}

static void test_entry_bound_evicts_least_recent(void **state)
{
    (void)state;
    wk_evcache *c = cache(3, 1 << 20);
    rec r;
    event_rec(&r, "0", "0", BODY);
    assert_false(view(c, "a", &r, 0));
    assert_false(view(c, "b", &r, 0));
    assert_false(view(c, "c", &r, 0));
    assert_true(view(c, "a", &r, 0)); /* a is now more recent than b */
    assert_false(view(c, "d", &r, 0));
    wk_evcache_stats s = wk_evcache_stats_of(c);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.evictions, 1);
    assert_true(view(c, "a", &r, 0));
    assert_true(view(c, "c", &r, 0));
    assert_true(view(c, "d", &r, 0));
    assert_false(view(c, "b", &r, 0)); /* b went */
    wk_evcache_free(&c);
}

static void test_byte_bound(void **state)
{
    (void)state;
    rec r;
    event_rec(&r, "0", "0", BODY);
    size_t one = 0;
    {
        wk_evcache *c = cache(100, 1 << 20);
        assert_false(view(c, "zz", &r, 0)); /* ids as long as e0 ... e8 */
        one = wk_evcache_stats_of(c).bytes;
        wk_evcache_free(&c);
    }
    assert_true(one > 0);
    /* room for eight such entries: the ninth pushes the oldest out */
    wk_evcache *c = cache(100, 8 * one);
    char id[8];
    for (int i = 0; i < 9; i++) {
        snprintf(id, sizeof id, "e%d", i);
        assert_false(view(c, id, &r, 0));
    }
    wk_evcache_stats s = wk_evcache_stats_of(c);
    assert_true(s.bytes <= 8 * one);
    assert_int_equal(s.entries, 8);
    assert_int_equal(s.evictions, 1);
    assert_false(view(c, "e0", &r, 0));
    wk_evcache_free(&c);
    /* a record over an eighth of the bytes is not kept */
    c = cache(100, 4 * one);
    json_t *v = wk_event_json("big", &r.top, 0, NULL);
    assert_int_equal(wk_evcache_put(c, "big", &r.top, WK_EVENT_FAR, v), -E2BIG);
    assert_int_equal(wk_evcache_stats_of(c).entries, 0);
    json_decref(v);
    wk_evcache_free(&c);
}

static void test_bad_input(void **state)
{
    (void)state;
    wk_evcache *c = NULL;
    assert_int_equal(wk_evcache_new(&c, 0, 100), -EINVAL);
    assert_int_equal(wk_evcache_new(&c, 4, 0), -EINVAL);
    c = cache(4, 1 << 20);
    redisReply empty = {.type = REDIS_REPLY_ARRAY};
    json_t *o = json_object();
    assert_int_equal(wk_evcache_put(c, "x", &empty, 0, o), -EINVAL);
    assert_null(wk_evcache_get(c, "x", &empty, 0, NULL));
    json_decref(o);
    wk_evcache_free(&c);
    wk_evcache_free(&c); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_is_the_same_view),
        cmocka_unit_test(test_record_change_misses),
        cmocka_unit_test(test_status_change_misses),
        cmocka_unit_test(test_entry_bound_evicts_least_recent),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
