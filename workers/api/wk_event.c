/* Events as the API takes them (pure, unit-tested): the event body's
 * validation into the canonical JSON kept in Redis. Every refusal
 * names the field, e.g. "signals[0].intervals[2].value must be 0, 1, 2 or 3
 * for a SIMPLE signal". */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/time.h"
#include "wk_api_internal.h"

/* ---- the event body ---- */

static const char *const signal_types[] = {"delta",
                                           "level",
                                           "multiplier",
                                           "price",
                                           "priceMultiplier",
                                           "priceRelative",
                                           "setpoint",
                                           "x-loadControlCapacity",
                                           "x-loadControlLevelOffset",
                                           "x-loadControlPercentOffset",
                                           "x-loadControlSetpoint",
                                           NULL};
static const char *const signal_names[] = {
    "SIMPLE",   "simple",     "ELECTRICITY_PRICE", "ENERGY_PRICE",  "DEMAND_CHARGE", "BID_PRICE",
    "BID_LOAD", "BID_ENERGY", "CHARGE_STATE",      "LOAD_DISPATCH", "LOAD_CONTROL",  NULL};
static const char *const si_scales[] = {"p", "n", "micro", "m", "c",    "d",
                                        "k", "M", "G",     "T", "none", NULL};
static const char *const target_kinds[] = {"venID", "groupID", "resourceID", "partyID", NULL};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int one_of(const char *s, const char *const *list)
{
    for (int i = 0; s && list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* A string of 1..max bytes without control characters. */
static int text_ok(json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (s == NULL || n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* An optional or required ISO 8601 duration at o[key] into *ms (-1 when
 * absent and optional). */
static int duration_field(json_t *o, const char *key, int required, int64_t *ms, char *err,
                          size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *ms = -1;
    if (v == NULL && !required)
        return 0;
    if (!json_is_string(v) || wk_duration_parse(json_string_value(v), ms) < 0)
        return fail(err, errlen,
                    "%s must be an ISO 8601 duration in weeks, days, hours, minutes and whole "
                    "seconds (e.g. PT1H30M)",
                    key);
    return 0;
}

int wk_mc_valid(const char *s, size_t n)
{
    if (n == 0 || n > WK_MC_MAX)
        return 0;
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s || !isalpha((unsigned char)s[0]))
        return 0; /* a URI has a scheme */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int parse_interval(json_t *iv, const char *where, int simple, int64_t *ms, char *err,
                          size_t errlen)
{
    static const char *const names[] = {"uid", "duration", "value", NULL};
    const char *key;
    json_t *v;
    if (!json_is_object(iv))
        return fail(err, errlen, "%s must be an object {duration, value} or {uid, duration, value}",
                    where);
    json_object_foreach(iv, key, v) if (!one_of(key, names)) return fail(
        err, errlen, "%s: unknown field '%.40s' (allowed: uid, duration, value)", where, key);
    json_t *uid = json_object_get(iv, "uid");
    if (uid &&
        !(json_is_string(uid) && wk_id_valid(json_string_value(uid), json_string_length(uid))))
        return fail(err, errlen, "%s.uid must be 1 to %d of A-Z a-z 0-9 . _ : -", where, WK_ID_MAX);
    v = json_object_get(iv, "duration");
    if (!json_is_string(v) || wk_duration_parse(json_string_value(v), ms) < 0 || *ms <= 0)
        return fail(err, errlen, "%s.duration must be a positive ISO 8601 duration (e.g. PT15M)",
                    where);
    v = json_object_get(iv, "value");
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return fail(err, errlen, "%s.value must be a number", where);
    double x = json_number_value(v);
    if (simple && !(x == 0 || x == 1 || x == 2 || x == 3))
        return fail(err, errlen, "%s.value must be 0, 1, 2 or 3 for a SIMPLE signal", where);
    return 0;
}

static int parse_item_base(json_t *ib, const char *where, char *err, size_t errlen)
{
    static const char *const names[] = {"itemDescription", "itemUnits", "siScaleCode", NULL};
    const char *key;
    json_t *v;
    if (!json_is_object(ib))
        return fail(err, errlen,
                    "%s.itemBase must be an object {itemDescription, itemUnits, "
                    "siScaleCode}",
                    where);
    json_object_foreach(ib, key, v)
    {
        if (!one_of(key, names))
            return fail(err, errlen,
                        "%s.itemBase: unknown field '%.40s' (allowed: itemDescription, itemUnits, "
                        "siScaleCode)",
                        where, key);
        if (!text_ok(v, 128))
            return fail(err, errlen, "%s.itemBase.%s must be a string of 1 to 128 bytes", where,
                        key);
    }
    for (int i = 0; i < 3; i++)
        if (!json_object_get(ib, names[i]))
            return fail(err, errlen, "%s.itemBase.%s is required", where, names[i]);
    if (!one_of(json_string_value(json_object_get(ib, "siScaleCode")), si_scales))
        return fail(err, errlen,
                    "%s.itemBase.siScaleCode must be one of p, n, micro, m, c, d, k, M, G, T, none",
                    where);
    return 0;
}

static int parse_signal(json_t *sg, size_t idx, int64_t duration_ms, char *err, size_t errlen)
{
    static const char *const names[] = {"signalName",   "signalType", "signalID", "itemBase",
                                        "currentValue", "intervals",  NULL};
    char where[32], iw[64];
    const char *key;
    json_t *v;
    snprintf(where, sizeof where, "signals[%zu]", idx);
    if (!json_is_object(sg))
        return fail(err, errlen, "%s must be an object", where);
    json_object_foreach(sg, key, v) if (!one_of(key, names)) return fail(
        err, errlen,
        "%s: unknown field '%.40s' (allowed: signalName, signalType, signalID, itemBase, "
        "currentValue, intervals)",
        where, key);
    json_t *name = json_object_get(sg, "signalName");
    const char *nm = json_string_value(name);
    if (!text_ok(name, 64) || (!one_of(nm, signal_names) &&
                               !(strncmp(nm, "x-", 2) == 0 && nm[2] != ' ' && nm[2] != '\0')))
        return fail(err, errlen,
                    "%s.signalName must be one of SIMPLE, simple, ELECTRICITY_PRICE, "
                    "ENERGY_PRICE, DEMAND_CHARGE, BID_PRICE, BID_LOAD, BID_ENERGY, CHARGE_STATE, "
                    "LOAD_DISPATCH, LOAD_CONTROL, or x-<name> (at most 64 bytes)",
                    where);
    int simple = strcmp(json_string_value(name), "SIMPLE") == 0 ||
                 strcmp(json_string_value(name), "simple") == 0;
    const char *type = json_string_value(json_object_get(sg, "signalType"));
    if (!one_of(type, signal_types))
        return fail(err, errlen,
                    "%s.signalType must be one of delta, level, multiplier, price, "
                    "priceMultiplier, priceRelative, setpoint, x-loadControlCapacity, "
                    "x-loadControlLevelOffset, x-loadControlPercentOffset, x-loadControlSetpoint",
                    where);
    if (simple && strcmp(type, "level") != 0)
        return fail(err, errlen, "%s.signalType must be level for a SIMPLE signal", where);
    json_t *id = json_object_get(sg, "signalID");
    if (id == NULL) { /* the schema requires one: the signal's position */
        char def[24];
        snprintf(def, sizeof def, "%zu", idx);
        json_object_set_new(sg, "signalID", json_string(def));
    } else if (!json_is_string(id) || !wk_id_valid(json_string_value(id), json_string_length(id))) {
        return fail(err, errlen, "%s.signalID must be 1 to %d of A-Z a-z 0-9 . _ : -", where,
                    WK_ID_MAX);
    }
    if ((v = json_object_get(sg, "itemBase")) && parse_item_base(v, where, err, errlen) < 0)
        return -EINVAL;
    if ((v = json_object_get(sg, "currentValue"))) {
        double x = json_number_value(v);
        if (!json_is_number(v) || !isfinite(x))
            return fail(err, errlen, "%s.currentValue must be a number", where);
        if (simple && !(x == 0 || x == 1 || x == 2 || x == 3))
            return fail(err, errlen, "%s.currentValue must be 0, 1, 2 or 3 for a SIMPLE signal",
                        where);
    }
    json_t *ivs = json_object_get(sg, "intervals");
    if (!json_is_array(ivs) || json_array_size(ivs) == 0 ||
        json_array_size(ivs) > WK_EVENT_INTERVALS_MAX)
        return fail(err, errlen, "%s.intervals must be an array of 1 to %d intervals", where,
                    WK_EVENT_INTERVALS_MAX);
    int64_t sum = 0;
    for (size_t i = 0; i < json_array_size(ivs); i++) {
        int64_t ms;
        snprintf(iw, sizeof iw, "%s.intervals[%zu]", where, i);
        if (parse_interval(json_array_get(ivs, i), iw, simple, &ms, err, errlen) < 0)
            return -EINVAL;
        sum += ms;
    }
    if (sum != duration_ms)
        return fail(
            err, errlen,
            "%s.intervals: their durations add up to %lld s, the event's duration is %lld s", where,
            (long long)(sum / 1000), (long long)(duration_ms / 1000));
    return 0;
}

/* Empty lists (or no targets at all) make a program-wide event: it goes to
 * the VENs enrolled in its program. */
static int parse_targets(json_t *t, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    size_t total = 0;
    if (!json_is_object(t))
        return fail(err, errlen,
                    "targets must be an object of venID, groupID, resourceID and "
                    "partyID lists");
    json_object_foreach(t, key, v)
    {
        if (!one_of(key, target_kinds))
            return fail(err, errlen,
                        "targets: unknown field '%.40s' (allowed: venID, groupID, resourceID, "
                        "partyID)",
                        key);
        if (!json_is_array(v))
            return fail(err, errlen, "targets.%s must be an array of ids", key);
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *id = json_array_get(v, i);
            if (!json_is_string(id) || !wk_id_valid(json_string_value(id), json_string_length(id)))
                return fail(err, errlen, "targets.%s[%zu] must be 1 to %d of A-Z a-z 0-9 . _ : -",
                            key, i, WK_ID_MAX);
        }
        total += json_array_size(v);
    }
    if (total > WK_EVENT_TARGETS_MAX)
        return fail(err, errlen, "targets name more than %d ids", WK_EVENT_TARGETS_MAX);
    return 0;
}

void wk_event_in_clear(wk_event_in *e)
{
    json_decref(e->body);
    memset(e, 0, sizeof *e);
}

int wk_event_parse(const char *body, size_t n, wk_event_in *e, char *err, size_t errlen)
{
    static const char *const names[] = {"marketContext",    "priority",
                                        "testEvent",        "responseRequired",
                                        "vtnComment",       "dtstart",
                                        "duration",         "tolerance",
                                        "notification",     "rampUp",
                                        "recovery",         "signals",
                                        "targets",          "modificationReason",
                                        "targetsMustMatch", NULL};
    memset(e, 0, sizeof *e);
    json_t *o = wk__api_json_object(body, n, "body must be a JSON object (the event)", err, errlen);
    if (o == NULL)
        return -EINVAL;
    e->body = o;
    if (wk__api_json_fields(o, names, NULL, NULL, err, errlen) < 0)
        return -EINVAL;
    json_t *v = json_object_get(o, "marketContext");
    if (!json_is_string(v) || !wk_mc_valid(json_string_value(v), json_string_length(v)))
        return fail(err, errlen, "marketContext must be the URI of a program (1 to %d bytes)",
                    WK_MC_MAX);
    snprintf(e->mc, sizeof e->mc, "%s", json_string_value(v));
    v = json_object_get(o, "priority");
    if (v == NULL)
        json_object_set_new(o, "priority", json_integer(0));
    else if (!json_is_integer(v) || json_integer_value(v) < 0 ||
             json_integer_value(v) > 4294967295LL)
        return fail(err, errlen, "priority must be an integer from 0 (none) to 4294967295");
    v = json_object_get(o, "testEvent");
    if (v == NULL)
        json_object_set_new(o, "testEvent", json_false());
    else if (!json_is_boolean(v))
        return fail(err, errlen, "testEvent must be true or false");
    v = json_object_get(o, "responseRequired");
    if (v == NULL)
        json_object_set_new(o, "responseRequired", json_string("always"));
    else if (!json_is_string(v) || (strcmp(json_string_value(v), "always") != 0 &&
                                    strcmp(json_string_value(v), "never") != 0))
        return fail(err, errlen, "responseRequired must be always or never");
    if ((v = json_object_get(o, "vtnComment")) && !text_ok(v, 256))
        return fail(err, errlen, "vtnComment must be a string of 1 to 256 bytes");
    v = json_object_get(o, "dtstart");
    if (!json_is_string(v) || wk_datetime_parse(json_string_value(v), &e->start_ms) < 0)
        return fail(err, errlen, "dtstart must be a UTC date-time such as 2026-12-03T14:00:00Z");
    char when[32];
    json_object_set_new(o, "dtstart", json_string(vtn_time_format(e->start_ms, when, sizeof when)));
    int64_t dur, ms;
    if (duration_field(o, "duration", 1, &dur, err, errlen) < 0)
        return -EINVAL;
    if (dur <= 0)
        return fail(err, errlen, "duration must be longer than zero");
    e->end_ms = e->start_ms + dur;
    static const char *const optional[] = {"tolerance", "notification", "rampUp", "recovery"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        if (duration_field(o, optional[i], 0, &ms, err, errlen) < 0)
            return -EINVAL;
    json_t *sigs = json_object_get(o, "signals");
    if (!json_is_array(sigs) || json_array_size(sigs) == 0 ||
        json_array_size(sigs) > WK_EVENT_SIGNALS_MAX)
        return fail(err, errlen, "signals must be an array of 1 to %d signals",
                    WK_EVENT_SIGNALS_MAX);
    for (size_t i = 0; i < json_array_size(sigs); i++)
        if (parse_signal(json_array_get(sigs, i), i, dur, err, errlen) < 0)
            return -EINVAL;
    if (json_object_get(o, "targets") == NULL)
        json_object_set_new(o, "targets", json_object());
    if (parse_targets(json_object_get(o, "targets"), err, errlen) < 0)
        return -EINVAL;
    if ((v = json_object_get(o, "targetsMustMatch"))) {
        if (!json_is_boolean(v))
            return fail(err, errlen, "targetsMustMatch must be true or false");
        e->must_match = json_is_true(v);
        json_object_del(o, "targetsMustMatch"); /* a check of this request, not kept */
    }
    if ((v = json_object_get(o, "modificationReason"))) {
        if (!text_ok(v, WK_REASON_MAX))
            return fail(err, errlen, "modificationReason must be a string of 1 to %d bytes",
                        WK_REASON_MAX);
        snprintf(e->reason, sizeof e->reason, "%s", json_string_value(v));
        json_object_del(o, "modificationReason"); /* kept beside the body, per change */
    }
    return 0;
}

int wk_event_parse_cancel(const char *body, size_t n, char *reason, size_t reasonlen, char *err,
                          size_t errlen)
{
    static const char *const names[] = {"modificationReason", NULL};
    reason[0] = '\0';
    if (n == 0)
        return 0;
    json_t *o = wk__api_json_object(body, n, "body must be empty or {\"modificationReason\": ...}",
                                    err, errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = wk__api_json_fields(o, names, NULL, NULL, err, errlen);
    json_t *v = json_object_get(o, "modificationReason");
    if (rc == 0 && v && !text_ok(v, WK_REASON_MAX))
        rc = fail(err, errlen, "modificationReason must be a string of 1 to %d bytes",
                  WK_REASON_MAX);
    else if (rc == 0 && v)
        snprintf(reason, reasonlen, "%s", json_string_value(v));
    json_decref(o);
    return rc;
}
