/* Report request records (venrr:{venID} values, docs/reports.md): what the
 * OpenADR side and the management API both read of them. Pure. */
#include <stdio.h>
#include <string.h>

#include "wk_internal.h"

const char *wk_report_request_state(json_t *rec, int64_t now)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    json_t *end = json_object_get(rec, "endsAt");
    if (st == NULL || !json_is_integer(end) || strcmp(st, "cancelled") == 0 ||
        strcmp(st, "cancelling") == 0)
        return st;
    /* The VEN's last report of the window may come one back-interval late. */
    int64_t back = 0;
    const char *rb = json_string_value(json_object_get(rec, "reportBackDuration"));
    if (rb && wk_duration_parse(rb, &back) < 0)
        back = 0;
    return now >= json_integer_value(end) + back ? "completed" : st;
}

const char *wk_report_shortest_period(json_t *descs, json_t *rids)
{
    const char *rate = NULL;
    int64_t best = 0;
    for (size_t k = 0; k < json_array_size(descs); k++) {
        json_t *d = json_array_get(descs, k);
        const char *id = json_string_value(json_object_get(d, "rID"));
        int wanted = rids == NULL;
        for (size_t i = 0; !wanted && id && i < json_array_size(rids); i++)
            wanted = strcmp(json_string_value(json_array_get(rids, i)), id) == 0;
        int64_t ms;
        const char *mp = json_string_value(json_object_get(d, "minPeriod"));
        if (wanted && mp && wk_duration_parse(mp, &ms) == 0 && (rate == NULL || ms < best))
            rate = mp, best = ms;
    }
    return rate;
}

const char *wk_report_index_member(char *out, const char *ven_id, const char *rr)
{
    snprintf(out, WK_REPORT_MEMBER_MAX, "%s%c%s", ven_id, VTN_QUEUE_SEP, rr ? rr : "");
    return out;
}
