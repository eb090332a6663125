/* The management API (api room): the route table and its entry, the
 * /api/v1/vens handlers, and the certificates API with its CA. */
#ifndef WK_API_H
#define WK_API_H

#include "wk_internal.h"

/* Token check, then the route table: wk_worker.entry[VTN_KIND_API]. */
extern const wk_handler wk_h_api;
/* Loads the CA of VTN_CA_DIR into w->ca when set (at start: a broken CA
 * stops the worker with the reason). 0 or <0 with err. */
int wk_api_init(wk_worker *w, char *err, size_t errlen);
void wk_api_free(wk_worker *w);

/* ---- management API parsing (wk_api.c), exposed for tests ---- */
enum wk_api_route {
    WK_API_NONE = 0,
    WK_API_VENS,           /* /api/v1/vens */
    WK_API_VEN,            /* /api/v1/vens/{venID} */
    WK_API_REREGISTER,     /* /api/v1/vens/{venID}/reregister */
    WK_API_CERTS,          /* /api/v1/certificates */
    WK_API_CERT,           /* /api/v1/certificates/{serial} */
    WK_API_CERT_REVOKE,    /* /api/v1/certificates/{serial}/revoke */
    WK_API_CRL,            /* /api/v1/crl */
    WK_API_PROGRAMS,       /* /api/v1/programs */
    WK_API_PROGRAM,        /* /api/v1/programs/{programID} */
    WK_API_EVENTS,         /* /api/v1/events */
    WK_API_EVENT,          /* /api/v1/events/{eventID} */
    WK_API_EVENT_CANCEL,   /* /api/v1/events/{eventID}/cancel */
    WK_API_EVENT_VENS,     /* /api/v1/events/{eventID}/vens */
    WK_API_GROUPS,         /* /api/v1/groups */
    WK_API_GROUP,          /* /api/v1/groups/{groupID} */
    WK_API_GROUP_VENS,     /* /api/v1/groups/{groupID}/vens */
    WK_API_PROGRAM_VENS,   /* /api/v1/programs/{programID}/vens */
    WK_API_VEN_TARGETS,    /* /api/v1/vens/{venID}/targets */
    WK_API_VEN_REPORTS,    /* /api/v1/vens/{venID}/reports */
    WK_API_VEN_REPORT,     /* /api/v1/vens/{venID}/reports/{reportRequestID} */
    WK_API_REPORTS,        /* /api/v1/reports */
    WK_API_VEN_OPTS,       /* /api/v1/vens/{venID}/opts */
    WK_API_POLICY_DEFAULT, /* /api/v1/report-policies/default */
    WK_API_PROGRAM_POLICY, /* /api/v1/programs/{programID}/report-policy */
    WK_API_VEN_POLICY,     /* /api/v1/vens/{venID}/report-policy */
    WK_API_HEALTH,         /* /api/v1/health */
    WK_API__COUNT
};
/* Splits path into route + id (venID or serial as given; out, WK_ID_MAX+1)
 * + query (pointer into path, may be NULL). Returns the route, WK_API_NONE
 * for unknown paths. */
int wk_api_route_of(const char *path, size_t len, char *ven_id, const char **query,
                    size_t *query_len);
/* The reportRequestID of a /api/v1/vens/{venID}/reports/{reportRequestID}
 * path (its last segment) into out (WK_ID_MAX+1): 0 or -EINVAL. */
int wk_api_report_request_id(const char *path, size_t len, char *out);
/* Allowed methods for a route, from the route table, e.g. "GET, POST". */
const char *wk_api_allow(int route);
/* Constant-time check of "Bearer <token>". 1 ok, 0 not. */
int wk_api_auth_ok(const char *header, size_t len, const char *token);
/* The query of GET /api/v1/vens (wk_api_fleet.c). */
enum wk_ven_state_filter {
    WK_VS_ANY = 0,
    WK_VS_PROVISIONED,        /* pre-provisioned through the API, not registered */
    WK_VS_REGISTERED,         /* registered (cancelling included) */
    WK_VS_ONLINE,             /* registered, polled within two of its poll intervals */
    WK_VS_OFFLINE,            /* registered, not online */
    WK_VS_OVERDUE,            /* at least one report request overdue */
    WK_VS_PUSH_UNDELIVERABLE, /* push mode: a gateway gave up delivering */
    WK_VS__COUNT
};
typedef struct wk_ven_list_query {
    int limit;
    char cursor[WK_ID_MAX + 1];
    char name[WK_NAME_MAX + 1]; /* exact venName */
    char q[WK_NAME_MAX + 1];    /* substring of venName or venID, any case */
    char program[WK_ID_MAX + 1];
    char group[WK_ID_MAX + 1];
    int state; /* enum wk_ven_state_filter */
} wk_ven_list_query;
/* 0, or -EINVAL with a message naming the parameter. */
int wk_api_parse_ven_list(const char *q, size_t n, wk_ven_list_query *out, char *err,
                          size_t errlen);
/* Parses the list query (limit, cursor, name); 0 or -EINVAL with a message. */
int wk_api_parse_list_query(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            char *name, size_t namelen, char *err, size_t errlen);
/* Parses the DELETE query (force); 0 or -EINVAL. */
int wk_api_parse_delete_query(const char *q, size_t n, int *force, char *err, size_t errlen);
/* Validates a provisioning body; fills name/fp (normalised). 0 or -EINVAL. */
int wk_api_parse_provision(const char *body, size_t n, char *name, size_t namelen, char *fp,
                           size_t fplen, char *err, size_t errlen);
/* ---- programs and events (wk_event.c: pure; wk_api_events.c: handlers) ---- */
#define WK_MC_MAX 256             /* bytes of a marketContext URI */
#define WK_REASON_MAX 256         /* bytes of a modificationReason */
#define WK_EVENT_SIGNALS_MAX 16   /* signals of one event */
#define WK_EVENT_INTERVALS_MAX 96 /* intervals of one signal (a day of 15 minutes) */
#define WK_EVENT_TARGETS_MAX 1000 /* ids in one event's targets, all kinds */
/* A marketContext: a URI (scheme ':' ...) of 1..WK_MC_MAX bytes, no spaces. */
int wk_mc_valid(const char *s, size_t n);
/* A validated event body (POST /api/v1/events, PUT /api/v1/events/{id}). */
typedef struct wk_event_in {
    json_t *body; /* owned: the canonical event (defaults filled, dtstart normalised) */
    char mc[WK_MC_MAX + 1];
    char reason[WK_REASON_MAX + 1]; /* modificationReason, "" when not given */
    int64_t start_ms, end_ms;
    int must_match; /* targetsMustMatch: refuse a target that matches no VEN */
} wk_event_in;
/* 0, or -EINVAL with a message naming the field. Call wk_event_in_clear
 * either way. */
int wk_event_parse(const char *body, size_t n, wk_event_in *e, char *err, size_t errlen);
void wk_event_in_clear(wk_event_in *e);
/* Body of POST .../cancel: empty or {"modificationReason": ...}. */
int wk_event_parse_cancel(const char *body, size_t n, char *reason, size_t reasonlen, char *err,
                          size_t errlen);
/* Body of POST /api/v1/programs: {name?, marketContext}; name defaults to
 * the marketContext. name holds WK_NAME_MAX + 1, mc WK_MC_MAX + 1. */
int wk_api_parse_program(const char *body, size_t n, char *name, char *mc, char *err,
                         size_t errlen);
/* venIDs in one PUT of a group's or program's members, and in one POST
 * .../vens batch (add + remove): bigger sets are built with batches. */
#define WK_MEMBERS_MAX 10000
#define WK_VEN_TARGET_IDS_MAX 100 /* resourceIDs, and partyIDs, of one VEN */
#define WK_VEN_TARGET_ID_MAX 64   /* bytes of one of them */
/* A list of at most max ids of at most idmax bytes each (field names it in
 * messages; more, when not NULL, is added to the too-long message): 0,
 * -EINVAL, or -E2BIG past max (the API answers 413). */
int wk_api_id_list(json_t *list, const char *field, size_t max, int idmax, const char *more,
                   char *err, size_t errlen);
/* Body of PUT .../vens ({venIDs}, with name when named: a group's PUT) or
 * of POST .../vens (batch: {add?, remove?}, removes applied after adds). */
typedef struct wk_members_in {
    char name[WK_NAME_MAX + 1]; /* "" when not given */
    json_t *add;                /* owned: the venIDs to add (PUT: the members) */
    json_t *remove;             /* owned: the venIDs to remove (batch only, else NULL) */
} wk_members_in;
/* 0, -EINVAL, or -E2BIG past WK_MEMBERS_MAX (the message names the limit
 * and batch_path, the batch endpoint). Call wk_members_in_clear after 0. */
int wk_api_parse_members(const char *body, size_t n, int batch, int named, const char *batch_path,
                         wk_members_in *m, char *err, size_t errlen);
void wk_members_in_clear(wk_members_in *m);
/* Body of PUT /api/v1/vens/{venID}/targets: {resourceID?, partyID?}, each
 * at most WK_VEN_TARGET_IDS_MAX ids; absent lists are empty. The caller
 * json_decref()s both after 0. 0 or -EINVAL. */
int wk_api_parse_ven_targets(const char *body, size_t n, json_t **resources, json_t **parties,
                             char *err, size_t errlen);
/* Body of PUT /api/v1/groups/{groupID}: {name?, venIDs}; name "" when not
 * given (WK_NAME_MAX + 1 bytes); *vens the venIDs array (a reference the
 * caller json_decref()s). 0 or -EINVAL. */
int wk_api_parse_group(const char *body, size_t n, char *name, json_t **vens, char *err,
                       size_t errlen);
/* Query of GET /api/v1/events/{eventID}/vens: format=json (default) or csv. */
int wk_api_parse_participation_query(const char *q, size_t n, int *csv, char *err, size_t errlen);
/* The filters of GET /api/v1/events. */
typedef struct wk_event_filter {
    char program[WK_ID_MAX + 1]; /* programID */
    char target[WK_ID_MAX + 1];  /* an id in any of the targets' lists */
    unsigned status_mask;        /* 1 << wk_event_status; 0: any */
    int64_t from_ms, to_ms;      /* the event overlaps [from, to); 0: open */
} wk_event_filter;
/* Query of GET /api/v1/events (limit, cursor and the filters); 0 or -EINVAL. */
int wk_api_parse_event_list(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            wk_event_filter *f, char *err, size_t errlen);
int wk_api_parse_event_filter(const char *key, const char *val, wk_event_filter *f, char *err,
                              size_t errlen);
/* 1 when the event (the API's JSON of it, with its status and times) passes f. */
int wk_event_matches(const wk_event_filter *f, json_t *ev, int status, int64_t start, int64_t end);
/* ---- certificates (wk_cert.c: CA, validation, signing; wk_api_cert.c: handlers) ---- */
#define WK_CERT_DAYS_DEFAULT 825 /* as vtnctl; the CA/B forum's old maximum */
#define WK_CERT_DAYS_MAX 3650
#define WK_CRL_DAYS_DEFAULT 30
#define WK_CRL_DAYS_MAX 365
#define WK_CRL_MAX 50000     /* unexpired revoked certificates in one CRL (~3.5 MB PEM) */
#define WK_CSR_MAX 16384     /* bytes of a CSR in PEM */
#define WK_CN_MAX 64         /* characters of a commonName (RFC 5280 ub-common-name) */
#define WK_RSA_BITS_MAX 8192 /* bigger keys only cost verification time */

/* The client CA the API signs with (VTN_CA_DIR), loaded once at start. */
typedef struct wk_ca {
    X509 *cert; /* NULL: issuing disabled */
    EVP_PKEY *key;
    char id[WK_FP_MAX + 1]; /* normalised fingerprint of ca.pem: names its Redis keys */
    time_t not_after;
} wk_ca;
/* Reads dir/ca.pem and dir/ca.key; checks they match and the certificate is
 * a CA with an ECC or RSA key. 0, or <0 with the reason in err. */
int wk_ca_load(wk_ca *ca, const char *dir, char *err, size_t errlen);
void wk_ca_free(wk_ca *ca);

/* A validated POST /api/v1/certificates body. */
typedef struct wk_cert_req {
    char ven[WK_ID_MAX + 1];
    char cn[WK_CN_MAX * 4 + 1]; /* "" = the VEN's venName, else its venID */
    int days;
    int key_type;  /* 0: from the CSR; VTN_KEY_EC or VTN_KEY_RSA: generate a key */
    X509_REQ *csr; /* owned; signature verified, key checked */
} wk_cert_req;
/* 0, or -EINVAL with the reason in err (a 400). Frees nothing on error:
 * call wk_cert_req_clear either way. */
int wk_cert_parse_issue(const char *body, size_t n, wk_cert_req *r, char *err, size_t errlen);
void wk_cert_req_clear(wk_cert_req *r);
/* PEM CSR -> X509_REQ whose key is allowed and whose signature verifies.
 * NULL with the reason in err. */
X509_REQ *wk_cert_parse_csr(const char *pem, size_t n, char *err, size_t errlen);
/* ECC P-256 or RSA 2048..WK_RSA_BITS_MAX: 0, else -EINVAL with the reason. */
int wk_cert_check_key(EVP_PKEY *k, char *err, size_t errlen);
/* A usable commonName: 1..WK_CN_MAX characters of UTF-8, no control characters. */
int wk_cert_cn_valid(const char *s, size_t n);
/* Serial as given in a path (hex, any case, optional colons) -> upper-case
 * hex without leading zeros, as vtn_pki_serial_hex prints it. 0 or -EINVAL. */
int wk_cert_serial_norm(const char *in, size_t n, char *out, size_t outlen);
/* Query of GET /api/v1/certificates (limit, cursor, venID); 0 or -EINVAL. */
int wk_cert_parse_list_query(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                             char *ven, size_t venlen, char *err, size_t errlen);
/* Query of GET /api/v1/crl (days); 0 or -EINVAL. */
int wk_cert_parse_crl_query(const char *q, size_t n, int *days, char *err, size_t errlen);
/* Body of POST .../revoke: empty, or {"reason": "..."}; 0 or -EINVAL. */
int wk_cert_parse_revoke(const char *body, size_t n, int *reason, char *err, size_t errlen);

/* A certificate signed by wk_cert_sign. */
typedef struct wk_cert_issued {
    char serial[WK_SERIAL_MAX + 1];
    char fp[WK_FP_MAX + 1];
    int64_t nb_ms, na_ms;
    int key_type;  /* VTN_KEY_EC or VTN_KEY_RSA */
    char *pem;     /* owned */
    char *key_pem; /* owned, generated key only; wiped when freed */
} wk_cert_issued;
/* Signs r's CSR key (or a key generated for it) for cn, valid from now - 5
 * min for r->days, never past the CA's own notAfter. 0; -ESTALE when the CA
 * has expired; other <0 with err. */
int wk_cert_sign(const wk_ca *ca, const wk_cert_req *r, const char *cn, time_t now,
                 wk_cert_issued *out, char *err, size_t errlen);
void wk_cert_issued_clear(wk_cert_issued *c);

#endif
