/* Event records as every room reads them (docs/redis-keys.md,
 * vtn:event:<eventID>): ISO 8601 durations and date-times, the status an
 * event has at a given time, and the JSON of a record (the management API
 * answers it, the oadr services write oadrDistributeEvent from it). */
#define _DEFAULT_SOURCE /* timegm */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vtn/keys.h"
#include "vtn/time.h"
#include "wk_internal.h"

const redisReply *wk_hfield(const redisReply *h, const char *f)
{
    if (h == NULL || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i];
        if (k->type == REDIS_REPLY_STRING && strlen(f) == (size_t)k->len &&
            memcmp(k->str, f, (size_t)k->len) == 0)
            return h->element[i + 1];
    }
    return NULL;
}

int wk_hash_empty(const redisReply *h)
{
    return h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements == 0;
}

/* A field of an HGETALL reply as a C string into out ("" when absent). */
/* Strings of an array reply (or one string reply) as a JSON array; ids
 * longer than WK_ID_MAX are skipped. */
json_t *wk_rep_strings(const redisReply *r)
{
    json_t *a = json_array();
    char id[WK_ID_MAX + 1];
    if (a == NULL || r == NULL)
        return a;
    if (r->type == REDIS_REPLY_STRING) {
        if (wk_rep_str(r, id, sizeof id))
            json_array_append_new(a, json_string(id));
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            if (wk_rep_str(r->element[i], id, sizeof id))
                json_array_append_new(a, json_string(id));
    }
    return a;
}

const char *wk_hfield_str(const redisReply *h, const char *f, char *out, size_t outlen)
{
    if (!wk_rep_str(wk_hfield(h, f), out, outlen))
        out[0] = '\0';
    return out;
}

long long wk_hfield_int(const redisReply *h, const char *f)
{
    char v[24];
    return atoll(wk_hfield_str(h, f, v, sizeof v));
}

/* ---- ISO 8601 ---- */

/* Digits at *p as a number (at most 9 of them); -1 when there are none. */
static long long digits(const char **p)
{
    long long v = 0;
    int n = 0;
    while (isdigit((unsigned char)**p) && n < 10) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    return n == 0 || n == 10 ? -1 : v;
}

int wk_duration_parse(const char *s, int64_t *ms)
{
    static const struct {
        char unit;
        int64_t ms;
        int time; /* after the T */
    } parts[] = {{'W', 604800000LL, 0},
                 {'D', 86400000LL, 0},
                 {'H', 3600000LL, 1},
                 {'M', 60000LL, 1},
                 {'S', 1000LL, 1}};
    const char *p = s;
    int64_t total = 0;
    size_t next = 0;
    int in_time = 0, any = 0;
    if (*p++ != 'P')
        return -EINVAL;
    while (*p) {
        if (*p == 'T') {
            if (in_time || p[1] == '\0')
                return -EINVAL;
            in_time = 1;
            p++;
            continue;
        }
        long long v = digits(&p); /* no fractions: the 2.0b duration pattern has none */
        if (v < 0)
            return -EINVAL;
        size_t i = next;
        while (i < sizeof parts / sizeof parts[0] &&
               (parts[i].unit != *p || parts[i].time != in_time))
            i++;
        if (i == sizeof parts / sizeof parts[0])
            return -EINVAL; /* Y and months (no fixed length), order, unknown units */
        total += v * parts[i].ms;
        next = i + 1;
        any = 1;
        p++;
    }
    if (!any)
        return -EINVAL;
    *ms = total;
    return 0;
}

int wk_datetime_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (strlen(s) < 20 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -EINVAL;
    for (int i = 0; i < 19; i++)
        if (!isdigit((unsigned char)s[i]) && i != 4 && i != 7 && i != 10 && i != 13 && i != 16)
            return -EINVAL;
    int frac = 0;
    const char *p = s + 19;
    if (*p == '.') {
        int scale = 100, nd = 0;
        for (p++; isdigit((unsigned char)*p); p++, nd++)
            if (nd < 3) {
                frac += (*p - '0') * scale;
                scale /= 10;
            }
        if (nd == 0)
            return -EINVAL;
    }
    if (strcmp(p, "Z") != 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 ||
        sec > 59)
        return -EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

/* ---- status ---- */

static const char *const status_names[] = {
    [WK_EVENT_FAR] = "far",
    [WK_EVENT_NEAR] = "near",
    [WK_EVENT_ACTIVE] = "active",
    [WK_EVENT_COMPLETED] = "completed",
    [WK_EVENT_CANCELLED] = "cancelled",
};

const char *wk_event_status_name(int status)
{
    return status >= 0 && status < WK_EVENT__STATUSES ? status_names[status] : NULL;
}

int wk_event_status_of(const char *name)
{
    for (int i = 0; name && i < WK_EVENT__STATUSES; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -EINVAL;
}

int64_t wk_event_near_ms(json_t *body)
{
    int64_t ms = -1;
    json_t *v = json_object_get(body, "rampUp");
    if (v == NULL)
        v = json_object_get(body, "notification");
    if (v && wk_duration_parse(json_string_value(v), &ms) < 0)
        ms = -1;
    return ms;
}

int wk_event_status(int64_t now, int cancelled, int64_t start, int64_t end, int64_t near_ms)
{
    if (cancelled)
        return WK_EVENT_CANCELLED;
    if (now >= end)
        return WK_EVENT_COMPLETED;
    if (now >= start)
        return WK_EVENT_ACTIVE;
    if (near_ms > 0 && now >= start - near_ms)
        return WK_EVENT_NEAR;
    return WK_EVENT_FAR;
}

/* The API's view of an event record: the body it was given, with its ids,
 * modificationNumber, status now and times. NULL for a record that is not
 * there (or unreadable). */
json_t *wk_event_json(const char *id, const redisReply *h, int64_t now, int *status)
{
    char buf[512], when[32]; /* a modificationReason is at most 256 bytes */
    const redisReply *b = wk_hfield(h, VTN_F_EVENT_BODY);
    if (b == NULL || b->type != REDIS_REPLY_STRING)
        return NULL;
    json_error_t je;
    json_t *o = json_loadb(b->str, (size_t)b->len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    int64_t start = wk_hfield_int(h, VTN_F_EVENT_START), end = wk_hfield_int(h, VTN_F_EVENT_END);
    int cancelled = strcmp(wk_hfield_str(h, VTN_F_EVENT_CANCELLED, buf, sizeof buf), "1") == 0;
    int stt = wk_event_status(now, cancelled, start, end, wk_event_near_ms(o));
    if (status)
        *status = stt;
    json_object_set_new(o, "eventID", json_string(id));
    json_object_set_new(o, "programID",
                        json_string(wk_hfield_str(h, VTN_F_EVENT_PROGRAM, buf, sizeof buf)));
    json_object_set_new(o, "modificationNumber",
                        json_integer(wk_hfield_int(h, VTN_F_EVENT_MODNUM)));
    wk_hfield_str(h, VTN_F_EVENT_REASON, buf, sizeof buf);
    if (buf[0])
        json_object_set_new(o, "modificationReason", json_string(buf));
    json_object_set_new(o, "eventStatus", json_string(wk_event_status_name(stt)));
    /* Every VEN that answered received it first (evopt counts it received
     * when evsent did not): those that received it and did not answer are
     * the rest. */
    long long in = wk_hfield_int(h, VTN_F_EVENT_OPT_IN),
              out = wk_hfield_int(h, VTN_F_EVENT_OPT_OUT);
    long long received = wk_hfield_int(h, VTN_F_EVENT_RECEIVED);
    json_object_set_new(o, "participation",
                        json_pack("{s:I,s:I,s:I,s:I}", "received", (json_int_t)received, "optIn",
                                  (json_int_t)in, "optOut", (json_int_t)out, "noAnswer",
                                  (json_int_t)(received > in + out ? received - in - out : 0)));
    json_object_set_new(
        o, "createdDateTime",
        json_string(vtn_time_format(wk_hfield_int(h, VTN_F_EVENT_CREATED), when, sizeof when)));
    json_object_set_new(
        o, "modifiedDateTime",
        json_string(vtn_time_format(wk_hfield_int(h, VTN_F_EVENT_MODIFIED), when, sizeof when)));
    return o;
}

int wk_json_list_has(json_t *list, const char *s)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *v = json_string_value(json_array_get(list, i));
        if (v && strcmp(v, s) == 0)
            return 1;
    }
    return 0;
}
