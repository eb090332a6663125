/* VEN records and their indexes (ven room): the identity check every
 * OpenADR handler makes, index ownership, index clean-up, and the one
 * venName rule the OpenADR registration and the management API share. */
#ifndef WK_VEN_H
#define WK_VEN_H

#include "wk_internal.h"

/* The registered-VEN check every OpenADR handler makes: wk_ven_check_plan
 * queues HMGET ven:{venID} r fp and returns its handle; wk_ven_check reads
 * that reply and answers 463 (returning 0) when the VEN is not registered
 * or the envelope's certificate is not the one bound to it. */
wk_rh wk_ven_check_plan(wk_req *q, const char *ven_id);
int wk_ven_check(wk_req *q, wk_rh h, const char *ven_id);
/* The registered-VEN check as a stage of its own, for handlers that only
 * need it before answering: 0 while its round is out (or after answering
 * 463), 1 once it passed, or at once when there is no venID to check. */
typedef struct wk_ven_gate {
    int asked;
    wk_rh rec;
} wk_ven_gate;
int wk_ven_gate_pass(wk_req *q, wk_ven_gate *g, const char *ven_id);
/* The identity lookup: the VEN an index names. wk_ven_lookup queues GET
 * of the index of value (a normalised fingerprint, a registrationID or a
 * venName) and returns its handle; wk_ven_found copies the venID it
 * named into out (WK_ID_MAX + 1 bytes): 1, or 0 when none. */
enum wk_ven_index { WK_VEN_BY_FP, WK_VEN_BY_REG, WK_VEN_BY_NAME };
wk_rh wk_ven_lookup(wk_req *q, enum wk_ven_index by, const char *value);
int wk_ven_found(const wk_req *q, wk_rh h, char *out, size_t outlen);
/* Queues EXISTS of the record of an index's owner when there is one and it
 * is not ven (ven owning it is a retry of this request): an owner without a
 * record is dangling and may be replaced. The handle, 0 when nothing was
 * queued, or the wk_cmd error. */
wk_rh wk_ven_owner_exists(wk_req *q, const char *owner, const char *ven);
/* Queues compare-and-delete of the indexes of a VEN whose registration
 * ended (reg only) or whose record was deleted (all = 1). 0 or <0. */
int wk_ven_index_cleanup(wk_req *q, const char *ven, const char *name, const char *fp,
                         const char *reg, int all);

/* A venName we store: 1..WK_NAME_MAX bytes, no control characters (CR,
 * LF, DEL ...): it appears in logs, JSON and XML. */
int wk_ven_name_valid(const char *s, size_t n);

#endif
