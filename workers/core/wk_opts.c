/* EiOpt, the pure parts (docs/opt.md): an opt schedule's components as
 * times, and the participation that a VEN's schedules give one event. The
 * oadr room stores opts with them, the API computes participation with
 * them when it reads, so a poll never does any of this. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wk_internal.h"

int wk_opt_intervals(json_t *availability, json_t **out, int64_t *last_end, char *err,
                     size_t errlen)
{
    *out = NULL;
    *last_end = 0;
    json_t *list = json_array();
    if (list == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(availability); i++) {
        json_t *c = json_array_get(availability, i);
        const char *ds = json_string_value(json_object_get(c, "dtstart"));
        const char *du = json_string_value(json_object_get(c, "duration"));
        int64_t start = 0, dur = 0;
        const char *what = NULL, *value = NULL, *why = NULL;
        if (ds == NULL || wk_datetime_parse(ds, &start) < 0) {
            what = "dtstart";
            value = ds;
            why = "is not a UTC date-time (YYYY-MM-DDThh:mm:ss[.f]Z)";
        } else if (du == NULL || wk_duration_parse(du, &dur) < 0 || dur <= 0 ||
                   dur > 366LL * 86400000) {
            /* At most a year: a schedule is a VEN's near-term availability,
             * and the sum can never overflow. */
            what = "duration";
            value = du;
            why = "is not a positive duration of at most a year in days, hours, minutes, seconds "
                  "or weeks";
        }
        if (why) {
            snprintf(err, errlen, "vavailability component %zu: %s %s %s", i + 1, what,
                     value ? value : "(none)", why);
            json_decref(list);
            return -EINVAL;
        }
        json_t *iv = json_pack("[I,I]", (json_int_t)start, (json_int_t)(start + dur));
        if (iv == NULL || json_array_append_new(list, iv) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
        if (start + dur > *last_end)
            *last_end = start + dur;
    }
    *out = list;
    return 0;
}

const char *wk_opt_from_schedules(json_t *schedules, const char *market_context, int64_t start,
                                  int64_t end, const char **opt_id)
{
    const char *in = NULL, *out = NULL;
    for (size_t i = 0; i < json_array_size(schedules); i++) {
        json_t *s = json_array_get(schedules, i);
        const char *mc = json_string_value(json_object_get(s, "mc"));
        const char *t = json_string_value(json_object_get(s, "t"));
        if (t == NULL || (mc && (market_context == NULL || strcmp(mc, market_context) != 0)))
            continue;
        json_t *ivs = json_object_get(s, "c");
        for (size_t k = 0; k < json_array_size(ivs); k++) {
            json_t *iv = json_array_get(ivs, k);
            int64_t a = json_integer_value(json_array_get(iv, 0));
            int64_t b = json_integer_value(json_array_get(iv, 1));
            /* optOut: any overlap; optIn: one component holds the whole period. */
            if (t[0] == 'o' && a < end && start < b && out == NULL)
                out = json_string_value(json_object_get(s, "o"));
            else if (t[0] == 'i' && a <= start && end <= b && in == NULL)
                in = json_string_value(json_object_get(s, "o"));
        }
    }
    if (out) {
        *opt_id = out;
        return "optOut";
    }
    *opt_id = in;
    return in ? "optIn" : NULL;
}
