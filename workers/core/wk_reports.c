/* Report request records (venrr:{venID} values, docs/reports.md): what the
 * OpenADR side and the management API both read of them. Pure. */
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
