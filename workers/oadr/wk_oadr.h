/* The OpenADR services (oadr room): the entry of every OpenADR request
 * (decode, then the message's handler), the message table, and the
 * EiRegisterParty and OadrPoll handlers. */
#ifndef WK_OADR_H
#define WK_OADR_H

#include "wk_internal.h"

/* Decodes the body (inline, or on the slow-work thread when large), then
 * hands the request to its message's handler: wk_worker.entry[VTN_KIND_OADR]. */
extern const wk_handler wk_oadr_entry;

/* ---- routing (wk_oadr.c) ---- */
typedef struct wk_route {
    enum wk_msg_type type;
    int from_ven;              /* a VEN may send it (else only the VTN writes it: 453) */
    const wk_handler *handler; /* NULL: answered by the generic "not supported" handler */
} wk_route;
extern const wk_route wk_routes[];
extern const size_t wk_nroutes;
const wk_route *wk_route_find(enum wk_msg_type t);

/* ---- handlers ---- */
extern const wk_handler wk_h_query_registration;
extern const wk_handler wk_h_create_registration;
extern const wk_handler wk_h_cancel_registration;
extern const wk_handler wk_h_canceled_registration;
extern const wk_handler wk_h_response;
extern const wk_handler wk_h_poll;
extern const wk_handler wk_h_unsupported;
extern const wk_handler wk_h_request_event;
extern const wk_handler wk_h_created_event;
/* EiReport (wk_oadr_report.c, docs/reports.md). */
extern const wk_handler wk_h_register_report;
extern const wk_handler wk_h_registered_report;
extern const wk_handler wk_h_created_report;
extern const wk_handler wk_h_update_report;
extern const wk_handler wk_h_canceled_report;
/* EiOpt (wk_oadr_opt.c, docs/opt.md). */
extern const wk_handler wk_h_create_opt;
extern const wk_handler wk_h_cancel_opt;

/* ---- the events that apply to a VEN (wk_oadr_event.c) ---- */
#define WK_EVENTS_SCAN_MAX                                                                         \
    1000 /* events not ended yet read from vtn:events:end for one VEN's set */
typedef struct wk_evset {
    wk_rh ver, list, first; /* GET vtn:events:ver, ZRANGE vtn:events, the first HGETALL */
    wk_rh attrs;            /* SMEMBERS ventargets:{venID} */
    json_t *ven_attrs;      /* owned: its members ("g:<groupID>" ...) as an object's keys */
    int n;                  /* HGETALLs queued */
    long long version;      /* vtn:events:ver as read with the list (0: never bumped) */
    json_t *ids;            /* owned: the eventIDs read */
    json_t *events;         /* owned: the VEN's events, in the order they are sent */
    char hash[17];          /* of the set (ids, modificationNumbers, statuses); "" empty */
    json_t *fresh;    /* owned: eventID -> modificationNumber, of those the VEN had not received */
    int64_t next_end; /* earliest end among them, ms; 0 none */
    int awaiting;     /* of them, responseRequired=always and not answered at their mn */
} wk_evset;
/* Queues the version (unless the caller read it already: version >= 0),
 * the list of events and what events can target the VEN by (its
 * ventargets set). The list's handle or <0. */
wk_rh wk_evset_start(wk_req *q, wk_evset *e, const char *ven, long long version);
/* Queues one HGETALL per event of the list, each with the VEN's answer to
 * it: how many events (0: none), or <0. */
int wk_evset_fetch(wk_req *q, wk_evset *e, const char *ven);
/* The VEN's set from the records, ordered (active first, then priority,
 * then start), with its hash and next end: its size, or -ENOMEM. */
int wk_evset_finish(wk_req *q, wk_evset *e, const char *ven, int64_t now);
/* Writes oadrDistributeEvent of the set (its first limit events when limit
 * > 0) into q->body. 0 or <0. */
int wk_evset_write(wk_req *q, wk_evset *e, const char *request_id, const char *ven, int limit);
/* Queues the evsent script: the VEN was sent this set at e->version (sent:
 * it got a distribute of it, so the events' participation records the
 * modificationNumbers it received; 0: the set is the one it had). */
wk_rh wk_evset_record(wk_req *q, const wk_evset *e, const char *ven, int sent);
void wk_evset_clear(wk_evset *e);
/* 1 when event ev (the API's JSON of it) applies to ven, whose ventargets
 * members are attrs' keys: its venID list names the VEN, or its groupID,
 * resourceID or partyID lists name one of the VEN's; an event without
 * targets applies to the VENs enrolled in its program. Pure. */
int wk_event_applies(json_t *ev, const char *ven, json_t *attrs);

/* The venq entry kinds wk_render_queued delivers; the pop script leaves
 * others queued for a worker that knows them (a newer version). */
#define WK_QUEUE_KINDS "CRMQK"
/* Renders a venq entry as the XML the VEN gets on its poll. 0, -EINVAL for
 * an unknown kind, or a buffer error. */
int wk_render_queued(vtn_buf *b, const char *entry, size_t len, const char *ven_id);
/* The oadrCreateReport of a "Q|<requestID>|<JSON>" entry (wk_oadr_report.c). */
int wk_render_create_report(vtn_buf *b, const char *entry, size_t len, const char *ven_id);

#endif
