/* Report request records (venrr:{venID} values, docs/reports.md): what the
 * OpenADR side and the management API both read of them, and the report
 * request policies (checked, chosen for a VEN, turned into requests). Pure. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vtn/time.h"
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

int wk_report_set_window(json_t *rec, int64_t start_ms, const char *duration, int64_t duration_ms)
{
    char start[40];
    int64_t t0 = start_ms - start_ms % 1000;
    vtn_time_format(t0, start, sizeof start);
    if (json_object_set_new(rec, "dtstart", json_string(start)) < 0 ||
        json_object_set_new(rec, "duration", json_string(duration)) < 0 ||
        json_object_set_new(rec, "endsAt", json_integer(t0 + duration_ms)) < 0)
        return -ENOMEM;
    return 0;
}

/* ---- report request policies ---- */

/* One rule's list of names (reportNames, reportTypes): at most
 * WK_POLICY_NAMES_MAX strings of 1..WK_POLICY_NAME_MAX bytes. */
static int policy_names(json_t *v, const char *field, size_t r, int required, char *err,
                        size_t errlen)
{
    if (v == NULL && !required)
        return 0;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > WK_POLICY_NAMES_MAX) {
        snprintf(err, errlen, "rules[%zu].%s must be a non-empty array of at most %d names", r,
                 field, WK_POLICY_NAMES_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *s = json_string_value(json_array_get(v, i));
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > WK_POLICY_NAME_MAX || !wk_id_valid(s, n)) {
            snprintf(err, errlen, "rules[%zu].%s[%zu] must be a name of 1 to %d bytes", r, field, i,
                     WK_POLICY_NAME_MAX);
            return -EINVAL;
        }
    }
    return 0;
}

static int policy_duration(json_t *rule, const char *field, size_t r, char *err, size_t errlen)
{
    json_t *v = json_object_get(rule, field);
    const char *s = json_string_value(v);
    int64_t ms;
    if (v == NULL)
        return 0;
    if (s == NULL || strlen(s) > WK_POLICY_DURATION_MAX || wk_duration_parse(s, &ms) < 0 ||
        ms <= 0) {
        snprintf(err, errlen,
                 "rules[%zu].%s must be an ISO 8601 duration longer than 0 such as PT1M (no "
                 "years, months or fractions)",
                 r, field);
        return -EINVAL;
    }
    return 0;
}

int wk_report_policy_check(json_t *p, char *err, size_t errlen)
{
    static const char *const rule_fields[] = {"reportNames",        "reportTypes", "granularity",
                                              "reportBackDuration", "duration",    NULL};
    const char *key;
    json_t *v;
    if (!json_is_object(p)) {
        snprintf(err, errlen, "body must be a JSON object {deliverIn, rules}");
        return -EINVAL;
    }
    json_object_foreach(p, key, v)
    {
        if (strcmp(key, "deliverIn") != 0 && strcmp(key, "rules") != 0) {
            snprintf(err, errlen, "unknown field '%.64s' (allowed: deliverIn, rules)", key);
            return -EINVAL;
        }
    }
    const char *in = json_string_value(json_object_get(p, "deliverIn"));
    if (in == NULL || (strcmp(in, "poll") != 0 && strcmp(in, "registered") != 0)) {
        snprintf(err, errlen, "deliverIn must be \"poll\" or \"registered\"");
        return -EINVAL;
    }
    json_t *rules = json_object_get(p, "rules");
    if (!json_is_array(rules) || json_array_size(rules) == 0 ||
        json_array_size(rules) > WK_POLICY_RULES_MAX) {
        snprintf(err, errlen, "rules must be a non-empty array of at most %d rules",
                 WK_POLICY_RULES_MAX);
        return -EINVAL;
    }
    for (size_t r = 0; r < json_array_size(rules); r++) {
        json_t *rule = json_array_get(rules, r);
        if (!json_is_object(rule)) {
            snprintf(err, errlen, "rules[%zu] must be an object {reportNames, ...}", r);
            return -EINVAL;
        }
        json_object_foreach(rule, key, v)
        {
            int i = 0;
            while (rule_fields[i] && strcmp(rule_fields[i], key) != 0)
                i++;
            if (rule_fields[i] == NULL) {
                snprintf(err, errlen,
                         "rules[%zu]: unknown field '%.64s' (allowed: reportNames, reportTypes, "
                         "granularity, reportBackDuration, duration)",
                         r, key);
                return -EINVAL;
            }
        }
        if (policy_names(json_object_get(rule, "reportNames"), "reportNames", r, 1, err, errlen) <
                0 ||
            policy_names(json_object_get(rule, "reportTypes"), "reportTypes", r, 0, err, errlen) <
                0 ||
            policy_duration(rule, "granularity", r, err, errlen) < 0 ||
            policy_duration(rule, "reportBackDuration", r, err, errlen) < 0 ||
            policy_duration(rule, "duration", r, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

json_t *wk_report_policy_builtin(const char *deliver_in)
{
    return json_pack("{s:s, s:[{s:[s, s]}]}", "deliverIn", deliver_in, "rules", "reportNames",
                     "TELEMETRY_USAGE", "TELEMETRY_STATUS");
}

/* A stored policy that still passes the check (a record written by hand or
 * by another version is skipped rather than trusted). */
static json_t *policy_load(const char *js)
{
    char err[160];
    json_t *p = js ? json_loads(js, 0, NULL) : NULL;
    if (p && wk_report_policy_check(p, err, sizeof err) < 0) {
        json_decref(p);
        p = NULL;
    }
    return p;
}

json_t *wk_report_policy_choose(const char *ven_policy, json_t *stored, json_t *targets,
                                const char *deliver_in, char *source, size_t sourcelen)
{
    json_t *p = policy_load(ven_policy);
    if (p) {
        snprintf(source, sourcelen, "ven");
        return p;
    }
    /* The enrolled program with a policy whose programID sorts first. */
    const char *best = NULL;
    size_t pl = strlen(VTN_TARGET_PROGRAM);
    for (size_t i = 0; i < json_array_size(targets); i++) {
        const char *m = json_string_value(json_array_get(targets, i));
        if (m == NULL || strncmp(m, VTN_TARGET_PROGRAM, pl) != 0 || (best && strcmp(m, best) >= 0))
            continue;
        json_t *cand = policy_load(json_string_value(json_object_get(stored, m)));
        if (cand) {
            json_decref(p);
            p = cand;
            best = m;
        }
    }
    if (p) {
        snprintf(source, sourcelen, "program %s", best + pl);
        return p;
    }
    p = policy_load(json_string_value(json_object_get(stored, WK_POLICY_DEFAULT_FIELD)));
    if (p) {
        snprintf(source, sourcelen, "default");
        return p;
    }
    snprintf(source, sourcelen, "built-in");
    return wk_report_policy_builtin(deliver_in);
}

static int name_in(json_t *names, const char *name)
{
    if (name == NULL)
        return 0;
    if (strncmp(name, "METADATA_", 9) == 0)
        name += 9;
    for (size_t i = 0; i < json_array_size(names); i++) {
        const char *n = json_string_value(json_array_get(names, i));
        if (n && strncmp(n, "METADATA_", 9) == 0)
            n += 9;
        if (n && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

/* The rule's request for one report (its rIDs filtered by reportTypes);
 * NULL with *skip set when no rID is left, NULL alone when out of memory. */
static json_t *rule_request(json_t *rule, json_t *report, const char *rr, int64_t now,
                            const char *via, int *skip)
{
    json_t *descs = json_object_get(report, "descriptions"),
           *types = json_object_get(rule, "reportTypes");
    json_t *rids = json_array(), *ids = json_array();
    *skip = 0;
    for (size_t k = 0; rids && ids && k < json_array_size(descs); k++) {
        json_t *d = json_array_get(descs, k);
        const char *id = json_string_value(json_object_get(d, "rID"));
        if (id == NULL ||
            (types && !name_in(types, json_string_value(json_object_get(d, "reportType")))))
            continue;
        if (json_array_append_new(
                rids, json_pack("{s:s, s:s?}", "rID", id, "readingType",
                                json_string_value(json_object_get(d, "readingType")))) < 0 ||
            json_array_append_new(ids, json_string(id)) < 0) {
            json_decref(rids);
            rids = NULL;
        }
    }
    json_t *rec = NULL;
    if (rids && ids && json_array_size(rids) == 0)
        *skip = 1;
    else if (rids && ids) {
        /* The VEN's shortest period for these rIDs, as it spelled it. */
        const char *rate = wk_report_shortest_period(descs, ids);
        const char *gran = json_string_value(json_object_get(rule, "granularity"));
        const char *back = json_string_value(json_object_get(rule, "reportBackDuration"));
        const char *asked = back;
        int64_t bms = 0, rms = 0;
        if (back && rate && wk_duration_parse(back, &bms) == 0 &&
            wk_duration_parse(rate, &rms) == 0 && bms < rms)
            back = rate; /* faster than the VEN can report: its minimum */
        else
            asked = NULL;
        const char *dflt = rate ? rate : "PT1M";
        rec = json_pack(
            "{s:s, s:s, s:s?, s:s, s:s, s:o, s:s, s:I, s:s}", "reportRequestID", rr,
            "reportSpecifierID", json_string_value(json_object_get(report, "reportSpecifierID")),
            "reportName", json_string_value(json_object_get(report, "reportName")), "granularity",
            gran ? gran : dflt, "reportBackDuration", back ? back : dflt, "rIDs", rids, "state",
            "requested", "requestedAt", (json_int_t)now, "via", via);
        rids = NULL;
        const char *dur = json_string_value(json_object_get(rule, "duration"));
        int64_t dms = 0;
        if (rec && asked &&
            json_object_set_new(rec, "reportBackDurationAsked", json_string(asked)) < 0) {
            json_decref(rec);
            rec = NULL;
        }
        if (rec && dur && wk_duration_parse(dur, &dms) == 0 && dms > 0 &&
            wk_report_set_window(rec, now, dur, dms) < 0) {
            json_decref(rec);
            rec = NULL;
        }
    }
    json_decref(rids);
    json_decref(ids);
    return rec;
}

json_t *wk_report_policy_requests(json_t *policy, json_t *reports, const char *rid, int64_t now)
{
    json_t *out = json_array(), *rules = json_object_get(policy, "rules");
    const char *via = json_string_value(json_object_get(policy, "deliverIn"));
    size_t n = 0;
    for (size_t i = 0; out && i < json_array_size(reports); i++) {
        json_t *r = json_array_get(reports, i);
        if (!json_is_string(json_object_get(r, "reportSpecifierID")))
            continue;
        /* The first rule naming the report that leaves it an rID. */
        for (size_t k = 0; k < json_array_size(rules); k++) {
            json_t *rule = json_array_get(rules, k);
            if (!name_in(json_object_get(rule, "reportNames"),
                         json_string_value(json_object_get(r, "reportName"))))
                continue;
            char id[64];
            int skip;
            snprintf(id, sizeof id, "rr-%s-%zu", rid, n);
            json_t *rec = rule_request(rule, r, id, now, via ? via : "poll", &skip);
            if (skip)
                continue;
            if (rec == NULL || json_array_append_new(out, rec) < 0) {
                json_decref(out);
                return NULL;
            }
            n++;
            break;
        }
    }
    return out;
}
