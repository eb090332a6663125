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

/* The venq entry kinds wk_render_queued delivers; the pop script leaves
 * others queued for a worker that knows them (a newer version). */
#define WK_QUEUE_KINDS "CR"
/* Renders a venq entry as the XML the VEN gets on its poll. 0, -EINVAL for
 * an unknown kind, or a buffer error. */
int wk_render_queued(vtn_buf *b, const char *entry, size_t len, const char *ven_id);

#endif
