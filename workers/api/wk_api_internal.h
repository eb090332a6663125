/* Shared by the files of the api room only (wk__ names): the query-string
 * walker, list paging, JSON bodies, reading HGETALL replies, and the
 * handlers the route table points to. */
#ifndef WK_API_INTERNAL_H
#define WK_API_INTERNAL_H

#include "wk_api.h"

#define WK_API_PATH_MAX 2048  /* longer paths: 414 */
#define WK_API_QUERY_MAX 2048 /* longer query strings: 414 */

/* The handlers of the route table: wk_api_vens.c and wk_api_cert.c. */
extern const wk_handler wk__api_vens_list, wk__api_vens_provision, wk__api_vens_get,
    wk__api_vens_delete, wk__api_vens_reregister;
/* One VEN from HGETALL ven:{id} as the API shows it (docs/openapi.yaml,
 * Ven) at now, with lastPoll and online; queued < 0 leaves queuedMessages
 * and queued out. NULL when out of memory. (wk_api_vens.c) */
json_t *wk__api_ven_json(wk_req *q, const char *ven, const redisReply *h, long long queued,
                         int64_t now);
/* wk_api_fleet.c: the VEN's last poll (ms, 0: never) and in *freq the poll
 * frequency it was given (its record's, else this worker's VTN_POLL_FREQ),
 * from its record's lp; online: registered and polled within two of them;
 * the overdue requests among venrr's HVALS. */
long long wk__api_ven_last_poll(wk_req *q, const redisReply *h, long long *freq);
int wk__api_ven_online(wk_req *q, const redisReply *h, int64_t now);
int wk__api_overdue_count(const redisReply *vals, int64_t now);
/* wk_api_health.c */
extern const wk_handler wk__api_health;
/* wk_api_events.c: programs and events. */
extern const wk_handler wk__api_programs_list, wk__api_programs_create, wk__api_programs_get,
    wk__api_events_list, wk__api_events_create, wk__api_events_get, wk__api_events_modify,
    wk__api_events_cancel, wk__api_events_vens;
/* wk_api_groups.c */
extern const wk_handler wk__api_groups_list, wk__api_groups_get, wk__api_groups_put,
    wk__api_groups_delete;
/* wk_api_members.c: members of groups and programs, a VEN's targets. */
extern const wk_handler wk__api_program_vens_get, wk__api_program_vens_put,
    wk__api_program_vens_post, wk__api_programs_delete, wk__api_group_vens_post,
    wk__api_ven_targets_get, wk__api_ven_targets_put;
/* What the members script needs of a kind of membership. */
typedef struct wk__api_members_kind {
    const char *record, *members, *list; /* vtn/keys.h patterns and key */
    const char *prefix;                  /* VTN_TARGET_GROUP or VTN_TARGET_PROGRAM */
    const char *what, *id_field;         /* "group", "groupID" in answers */
    const char *batch_path;              /* printf pattern of the batch endpoint (%s: id) */
} wk__api_members_kind;
extern const wk__api_members_kind wk__api_group_members, wk__api_program_members;
/* Reads the kind (first element) of script outcome h into kind: 1 to go
 * on; 0 after answering 500 (unreadable) or 404 "no <what> with <field>
 * <q->path_id>" (kind "404"). */
int wk__api_script_kind(wk_req *q, wk_rh h, char *kind, size_t kindlen, const char *what,
                        const char *field);
/* Queues the members script on q->path_id: op "put" (add: the members),
 * "batch" (add, then remove) or "del"; name is a group's name on put. */
wk_rh wk__api_members_script(wk_req *q, const wk__api_members_kind *k, const char *op,
                             const char *name, json_t *add, json_t *remove);
/* A ventargets:{venID} set's members (SMEMBERS reply) as
 * {resourceID: [...], partyID: [...], groupID: [...], programID: [...]},
 * each sorted; NULL when out of memory. (SMEMBERS, not SORT: SORT is a
 * write command that Redis refuses at maxmemory, and reads must go on.) */
json_t *wk__api_ven_targets(const redisReply *members);
/* Sorts a JSON array of strings in place (left as is when out of memory). */
void wk__api_sort_strings(json_t *list);
/* Sorts a JSON array in place with cmp over its elements (json_t *const *),
 * left as is when out of memory. */
void wk__api_sort_json(json_t *list, int (*cmp)(const void *, const void *));
/* wk_api_reports.c: a VEN's reports and requests, the received data. */
extern const wk_handler wk__api_ven_reports_get, wk__api_ven_reports_post,
    wk__api_ven_report_delete, wk__api_reports_data;
/* ... and the report request policies (GET, PUT, DELETE; the scope, default,
 * program or VEN, read from the path). */
extern const wk_handler wk__api_policy_get, wk__api_policy_put, wk__api_policy_delete;
extern const wk_handler wk__api_ven_opts_get;
extern const wk_handler wk__api_cert_list, wk__api_cert_issue, wk__api_cert_get,
    wk__api_cert_revoke, wk__api_crl;

/* The members of a page (a ZRANGEBYLEX array, or one string of an index
 * lookup) as a JSON array of strings; NULL when out of memory. */
json_t *wk__api_members(const redisReply *r);
/* Query-string walker: fn gets the percent-decoded key and value of each
 * parameter. */
typedef int (*wk__api_param_fn)(void *ud, const char *key, const char *val, char *err,
                                size_t errlen);
int wk__api_each_param(const char *q, size_t n, wk__api_param_fn fn, void *ud, char *err,
                       size_t errlen);
/* Every list's paging parameters. wk__api_page_param handles "limit" and
 * "cursor": 1 when key was one of them, 0 when it is another parameter (the
 * caller's), -EINVAL with a message. wk__api_param_once refuses a parameter
 * given twice. */
typedef struct wk__api_page {
    int *limit;
    char *cursor;
    size_t cursorlen;
    int seen_limit, seen_cursor;
} wk__api_page;
/* An integer parameter from 1 to max: 0, or -EINVAL with "<key> must be an
 * integer from 1 to <max>". */
int wk__api_int_value(const char *key, const char *val, int max, int *out, char *err,
                      size_t errlen);
/* A query string that takes one parameter, key, whose value parse checks
 * into out (0 or -EINVAL with a message); any other parameter is refused
 * by name. An absent query (q NULL) leaves out as the caller set it. */
typedef int (*wk__api_value_fn)(const char *key, const char *val, void *out, char *err,
                                size_t errlen);
int wk__api_parse_single(const char *q, size_t n, const char *key, wk__api_value_fn parse,
                         void *out, char *err, size_t errlen);
/* A list's query with limit and cursor only; 0 or -EINVAL with a message. */
int wk__api_parse_page_only(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            char *err, size_t errlen);
int wk__api_page_param(wk__api_page *p, const char *key, const char *val, char *err, size_t errlen);
/* Queues the page of a list kept in a sorted set of equal scores: up to
 * limit + 1 members after cursor ("" = from the start), the one past the
 * page saying there is a next. Its reply handle, or the wk_cmd error. */
wk_rh wk__api_page_cmd(wk_req *q, const char *key, const char *cursor, int limit);
/* next_cursor of a page read with wk__api_page_cmd (members: what it returned,
 * shown: how many of them were looked up): the last shown member encoded,
 * or JSON null on the last page. */
json_t *wk__api_next_cursor(json_t *members, int limit, int shown);
/* A list's one filter parameter besides limit and cursor: its key, the
 * check of its value, the longest value and what it may contain (for the
 * message), and why it cannot go with a cursor (NULL: it can). */
typedef struct wk__api_filter {
    const char *key;
    int (*valid)(const char *s, size_t n);
    int max;
    const char *chars;
    const char *not_with_cursor;
} wk__api_filter;
/* Parses limit, cursor and f's parameter (into val); 0 or -EINVAL with a
 * message. */
int wk__api_parse_filtered_list(const char *q, size_t n, const wk__api_filter *f, int *limit,
                                char *cursor, size_t cursorlen, char *val, size_t vallen, char *err,
                                size_t errlen);
int wk__api_param_once(const char *key, int *seen, char *err, size_t errlen);
int wk__api_json_ctype(vtn_str ct);
/* A request body that must be a JSON object (duplicate keys refused): the
 * object, or NULL with "body is not valid JSON: ..." or not_object in err. */
json_t *wk__api_json_object(const char *body, size_t n, const char *not_object, char *err,
                            size_t errlen);
const redisReply *wk__api_hfield(const redisReply *h, const char *f);

/* The fields of a JSON object body: every key must be one of names (a
 * NULL-terminated list), else -EINVAL with "unknown field '<key>'
 * (allowed: ...)"; field(ud, i, value) takes names[i]'s value (0, or
 * -EINVAL with a message); field NULL only checks the names. */
int wk__api_json_fields(json_t *o, const char *const *names,
                        int (*field)(void *ud, int i, json_t *v, char *err, size_t errlen),
                        void *ud, char *err, size_t errlen);

/* The paging every list shares: the members of a page (read from the reply
 * of its page command), then one HGETALL per shown member, then the JSON
 * answer {"<items>": [...], "next_cursor": ...}. A list's state embeds it
 * and its fini calls wk__api_pager_fini. */
typedef struct wk__api_pager {
    int limit;
    wk_rh page;      /* the page command (wk__api_page_cmd, or an index lookup) */
    wk_rh first;     /* the first HGETALL; the others follow it */
    int nrecords;    /* HGETALLs queued, in member order */
    json_t *members; /* owned */
} wk__api_pager;
/* Reads the page and queues the records' HGETALL (record_key: the records'
 * VTN_KEY_* pattern, e.g. VTN_KEY_VEN). 1 when they are queued; 0 after
 * answering (an empty page, or an error). */
int wk__api_pager_fetch(wk_req *q, wk__api_pager *p, const char *items, const char *record_key);
/* Answers 200 with item(ud, member, record) for every record (NULL: skip
 * it: gone or stale) and the next cursor. */
void wk__api_pager_answer(wk_req *q, wk__api_pager *p, const char *items,
                          json_t *(*item)(void *ud, const char *member, const redisReply *h),
                          void *ud);
void wk__api_pager_fini(wk__api_pager *p);

/* A list without filters (programs, groups): limit and cursor over a
 * sorted set, one HGETALL per member, item() turns a record into JSON. */
typedef struct wk__api_list_kind {
    const char *zset, *items;
    const char *record_key; /* vtn/keys.h pattern of a member's record */
    json_t *(*item)(void *ud, const char *member, const redisReply *h);
} wk__api_list_kind;
typedef struct wk__api_plain_list_state {
    int stage;
    char cursor[WK_ID_MAX + 1];
    wk__api_pager pg;
} wk__api_plain_list_state;
void wk__api_plain_list(wk_req *q, wk__api_plain_list_state *s, const wk__api_list_kind *k);
void wk__api_plain_list_fini(void *st);

#endif
