/* GET /api/v1/vens/{venID}/opts (docs/opt.md): the VEN's opt schedules and
 * its opts for single events, as its oadrCreateOpt messages made them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/keys.h"
#include "wk_api_internal.h"

typedef struct ven_opts_state {
    int stage;
    wk_rh ven, opts; /* EXISTS ven:{venID}, HGETALL venopts:{venID} */
} ven_opts_state;

static int by_opt_id(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "optID")),
                  json_string_value(json_object_get(*(json_t *const *)b, "optID")));
}

/* The records as the API shows them (without the VTN's own "m" and
 * "expires"), sorted by optID, into schedules and eventOpts. 0 or -1. */
static int opts_of(const redisReply *h, json_t *schedules, json_t *event_opts)
{
    size_t n = h && h->type == REDIS_REPLY_ARRAY ? h->elements / 2 : 0, k = 0;
    json_t **recs = calloc(n ? n : 1, sizeof *recs);
    if (recs == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const redisReply *v = h->element[2 * i + 1];
        json_t *rec = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
        if (!json_is_object(rec) || !json_is_string(json_object_get(rec, "optID"))) {
            json_decref(rec); /* unreadable: the next oadrCreateOpt drops it */
            continue;
        }
        json_object_del(rec, "m");
        json_object_del(rec, "expires");
        recs[k++] = rec;
    }
    qsort(recs, k, sizeof *recs, by_opt_id);
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        json_t *to = json_object_get(recs[i], "eventID") ? event_opts : schedules;
        if (json_array_append_new(to, recs[i]) < 0)
            rc = -1;
    }
    free(recs);
    return rc;
}

static void api_ven_opts_get(wk_req *q, void *st)
{
    ven_opts_state *s = st;
    const char *ven = q->path_id;
    char k[VTN_KEY_MAX];
    if (s->stage == 0) {
        s->stage = 1;
        if ((s->ven = wk_cmd(q, "EXISTS", wk_key_ven(k, ven), NULL)) < 0 ||
            (s->opts = wk_cmd(q, "HGETALL", wk_key_venopts(k, ven), NULL)) < 0)
            wk_reply_no_room(q);
        return;
    }
    if (wk_rep_int(q, s->ven, 0) == 0) {
        wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
        return;
    }
    json_t *schedules = json_array(), *event_opts = json_array();
    if (schedules == NULL || event_opts == NULL ||
        opts_of(wk_rep(q, s->opts), schedules, event_opts) < 0) {
        json_decref(schedules);
        json_decref(event_opts);
        wk_reply_internal(q, "out of memory");
        return;
    }
    wk_reply_json(q, 200,
                  json_pack("{s:s, s:o, s:o}", "venID", ven, "schedules", schedules, "eventOpts",
                            event_opts));
}

const wk_handler wk__api_ven_opts_get =
    WK_HANDLER("api.vens.opts.get", ven_opts_state, NULL, NULL, api_ven_opts_get);
