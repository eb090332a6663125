/* The OpenADR 2.0b message codec of the worker.
 *
 * Reading: wk_msg_parse() takes the body of a POST to one of the 2.0b
 * services, parses it with the hardened libxml2 settings of vtn/xml.h, finds
 * the payload element inside oadrPayload/oadrSignedObject, looks it up in the
 * message table, checks that the service accepts it, validates the document
 * against the project's own schemas (schemas/, embedded in the binary) and
 * copies the fields the handlers need into a plain struct.
 *
 * Writing: wk_write_*() append one complete oadrPayload document to a vtn_buf
 * from string templates with XML escaping (no DOM). On error the buffer is
 * left as it was.
 *
 * Errors and the reply they need (the same rule for every message):
 *   body is not well-formed XML, has a DOCTYPE, or its root is not
 *   oadr:oadrPayload/oadr:oadrSignedObject ........ oadrResponse 454
 *   payload element not known to the VTN .......... oadrResponse 453
 *   known payload on the wrong service endpoint ... oadrResponse 453
 *   schema violation, or a value longer than the caps below
 *      .......................... the message's own reply type, 454
 *      (e.g. an invalid oadrCreatePartyRegistration gets an
 *      oadrCreatedPartyRegistration with 454)
 * wk_msg.desc names the problem in every case (element, line, libxml2 text).
 *
 * Threads: wk_oadr_init() once at start (compiles the schemas while the
 * process is single-threaded, then installs a deny-all external entity
 * loader); then one wk_codec per thread. A wk_msg belongs to the thread that
 * filled it until wk_msg_clear(). */
#ifndef WK_CODEC_H
#define WK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libxml/tree.h>

#include "vtn/buf.h"
#include "vtn/xml.h"
#include "wk_messages.h"

/* Caps on copied values (bytes, without the NUL). A longer value makes the
 * message invalid (454): no VTN-generated ID comes near them and a VEN's own
 * IDs (UUIDs, names) fit with room to spare. */
#define WK_ID_MAX 128   /* requestID, venID, registrationID, reportRequestID, optID ... */
#define WK_NAME_MAX 256 /* oadrVenName */
#define WK_ADDR_MAX 512 /* oadrTransportAddress */
#define WK_DESC_MAX 512 /* responseDescription and error descriptions: truncated, never 454 */
#define WK_SCHEMA_VERSION_MAX 16

/* OpenADR 2.0b response codes used by the codec (the handlers use more). */
#define WK_OADR_OK 200
#define WK_OADR_NOT_RECOGNIZED 453
#define WK_OADR_INVALID_DATA 454

/* The 2.0b simple-HTTP service endpoints, /OpenADR2/Simple/2.0b/<name>. */
enum wk_service {
    WK_SVC_NONE = 0, /* unknown path */
    WK_SVC_EI_REGISTER_PARTY,
    WK_SVC_EI_EVENT,
    WK_SVC_EI_REPORT,
    WK_SVC_EI_OPT,
    WK_SVC_OADR_POLL,
    WK_SVC__COUNT
};

/* Every payload of oadrSignedObject, from the one list (wk_messages.h). The
 * VEN -> VTN ones (the first group)
 * are accepted by wk_msg_parse on their service; the VTN -> VEN ones are
 * known so that the reply type of an error can be named and so that
 * wk_msg_name() covers what the writers emit, but a VEN sending them gets
 * 453 (not a message a VTN accepts). */
enum wk_msg_type {
    WK_MSG_NONE = 0, /* not identified (unparseable body, unknown payload) */
#define WK_MSG_ENUM(id, element, reply, services, wrapped, handler) WK_MSG_##id,
    WK_MESSAGES(WK_MSG_ENUM)
#undef WK_MSG_ENUM
        WK_MSG__COUNT
};

/* The eiResponse of a message that carries one (oadrResponse,
 * oadrCanceledPartyRegistration, oadrCreatedReport, ...). */
typedef struct wk_ei_response {
    int present;                    /* 0: the message had no eiResponse */
    int code;                       /* responseCode, 100..999 */
    char desc[WK_DESC_MAX + 1];     /* responseDescription, "" if absent; truncated */
    char request_id[WK_ID_MAX + 1]; /* pyld:requestID inside eiResponse (may be "") */
} wk_ei_response;

/* One eventResponse of oadrCreatedEvent. */
#define WK_EVENT_RESPONSES_MAX 16 /* more in one oadrCreatedEvent: 454 */
typedef struct wk_event_response {
    int code;                     /* responseCode */
    char event_id[WK_ID_MAX + 1]; /* qualifiedEventID/eventID */
    long long mod_number;         /* qualifiedEventID/modificationNumber */
    char opt[8];                  /* optType: "optIn" or "optOut" */
} wk_event_response;

/* Reports: caps per message (more is 454 with what was over). */
#define WK_REPORTS_MAX 16            /* oadrReport elements */
#define WK_REPORT_RIDS_MAX 128       /* oadrReportDescription elements, all reports together */
#define WK_REPORT_POINTS_MAX 512     /* oadrReportPayload elements (values), all reports together */
#define WK_REPORT_REQUESTS_MAX 16    /* oadrReportRequest elements */
#define WK_REPORT_SPECIFIERS_MAX 128 /* specifierPayload elements, all requests together */
#define WK_PENDING_MAX 64            /* reportRequestIDs of oadrPendingReports */
#define WK_TARGET_IDS_MAX 16         /* resourceIDs of one reportSubject or reportDataSource */
#define WK_VALUE_MAX 64              /* a name, unit, duration, date-time or number */
#define WK_STATUS_MAX 1024           /* an oadrPayloadResourceStatus as JSON */
/* EiOpt: caps of one oadrCreateOpt (more is 454 with what was over). */
#define WK_OPT_COMPONENTS_MAX 32 /* xcal:available components of its vavailability */

typedef struct wk_msg {
    /* What arrived and how to answer. */
    enum wk_service service;    /* the endpoint it arrived on */
    enum wk_msg_type type;      /* WK_MSG_NONE when not identified */
    enum wk_msg_type reply;     /* the payload the VTN answers with (also for errors);
                                 * WK_MSG_RESPONSE for oadrPoll (the handler picks the
                                 * queued message) and for every unidentified body */
    int code;                   /* 200, or 453/454 when wk_msg_parse failed */
    char desc[WK_DESC_MAX + 1]; /* for errors: what is wrong, for the responseDescription */
    char payload_name[64];      /* local name of the payload element, "" if none found */

    /* Fields, "" / -1 when the message has none. On a schema error they are
     * filled as far as they could be read (best effort, capped), so the error
     * reply can echo requestID and venID. */
    char schema_version[WK_SCHEMA_VERSION_MAX + 1]; /* ei:schemaVersion attribute */
    char request_id[WK_ID_MAX + 1];      /* pyld:requestID of the payload (not eiResponse's) */
    char ven_id[WK_ID_MAX + 1];          /* ei:venID */
    char registration_id[WK_ID_MAX + 1]; /* ei:registrationID */
    char ven_name[WK_NAME_MAX + 1];      /* oadr:oadrVenName */
    char profile_name[16];               /* oadr:oadrProfileName: "2.0b" (schema allows 2.0a too) */
    char transport_name[16];             /* oadr:oadrTransportName: "simpleHttp" or "xmpp" */
    char transport_address[WK_ADDR_MAX + 1]; /* oadr:oadrTransportAddress */
    char opt_id[WK_ID_MAX + 1];              /* ei:optID (oadrCancelOpt, oadrCreateOpt) */
    int reply_limit;                         /* pyld:replyLimit (oadrRequestEvent); 0 absent */
    int n_event_responses;                   /* oadrCreatedEvent's eventResponses */
    wk_event_response event_responses[WK_EVENT_RESPONSES_MAX];
    int8_t report_only;         /* oadr:oadrReportOnly: 1, 0, -1 absent */
    int8_t xml_signature;       /* oadr:oadrXmlSignature: 1, 0, -1 absent */
    int8_t http_pull_model;     /* oadr:oadrHttpPullModel: 1, 0, -1 absent (= pull) */
    wk_ei_response ei_response; /* eiResponse of oadrResponse, oadrCanceled*,
                                 * oadrCreatedReport, oadrRegisteredReport,
                                 * oadrCanceledReport, oadrCreatedEvent's eiCreatedEvent */
    /* Reports, owned (wk_msg_clear frees them), NULL when the message has
     * none. Keys are the 2.0b element names; absent elements are absent.
     * reports: the oadrReport elements of oadrRegisterReport and
     *   oadrUpdateReport: [{reportSpecifierID, reportName, reportRequestID,
     *   eiReportID, createdDateTime, dtstart, duration,
     *   descriptions: [{rID, reportType, readingType, itemBase: {type,
     *     itemDescription, itemUnits, siScaleCode}, marketContext,
     *     minPeriod, maxPeriod, onChange (bool), reportSubject: [resourceID],
     *     reportDataSource: [resourceID]}],
     *   intervals: [{dtstart, duration, uid, payloads: [{rID, value (the
     *     float as sent) or status (oadrPayloadResourceStatus as an object
     *     of its elements), confidence, accuracy, dataQuality}]}]}]
     * report_requests: oadrReportRequest elements (oadrRegisteredReport):
     *   [{reportRequestID, reportSpecifierID, granularity,
     *   reportBackDuration, rIDs: [{rID, readingType}]}]
     * pending: the reportRequestIDs of oadrPendingReports. */
    json_t *reports;
    json_t *report_requests;
    json_t *pending;
    /* oadrCreateOpt, owned, NULL for other messages: {optType, optReason,
     * marketContext, createdDateTime, eventID and modificationNumber (its
     * qualifiedEventID), availability: [{dtstart, duration}] (the
     * components of its vavailability, as sent; absent without one),
     * resourceIDs: [...] (its eiTarget's)}; absent elements are absent. */
    json_t *opt;
    int n_report_rids, n_report_points, n_report_specifiers; /* counted against the caps */

    /* The parsed document, alive until wk_msg_drop_doc() or wk_msg_clear()
     * (the worker drops it right after decoding: a codec of a later service
     * copies what its handler needs into this struct). NULL when parsing
     * failed. Read-only. */
    xmlDoc *doc;
    xmlNode *payload; /* the payload element inside oadrSignedObject */
} wk_msg;

/* Once per process, before any thread uses the codec: compiles the embedded
 * schemas and installs the deny-all external entity loader. 0, -ENOMEM, or
 * -EINVAL when the schemas do not compile (logged with the libxml2 message).
 * Calling it again is a no-op. */
int wk_oadr_init(void);
/* Frees the compiled schemas; no codec may be in use. */
void wk_oadr_shutdown(void);

/* Per-thread state: the parser and validation contexts and error capture. */
typedef struct wk_codec wk_codec;
/* NULL on out of memory or when wk_oadr_init() has not succeeded. */
wk_codec *wk_codec_new(void);
void wk_codec_free(wk_codec **c);
/* The compiled project schema (NULL before wk_oadr_init()). */
const vtn_xml_schema *wk_codec_schema(void);
/* True when root is an oadrPayload carrying an oadrPoll in the one plain
 * shape wk_msg_parse accepts without running the schema validator; every
 * document it accepts is valid against the project schema. */
int wk_poll_shape_valid(const xmlNode *root);

/* Parses and validates one request body that arrived on service svc
 * (WK_SVC_NONE skips the endpoint check: a push VEN's reply to a
 * VTN-initiated POST has no endpoint of ours) and
 * fills *m (which the function initialises; any earlier content must have
 * been cleared). Returns:
 *   0        the message is valid, m->type says which, m->code == 200;
 *   -EBADMSG the body gets an OpenADR error: m->code (453/454), m->desc and
 *            m->reply say what to send (see wk_write_error);
 *   -ENOMEM  out of memory (answer HTTP 500/503, the request may be retried).
 * In every case call wk_msg_clear(m) when done. */
int wk_msg_parse(wk_codec *c, enum wk_service svc, const char *body, size_t len, wk_msg *m);
/* Frees the parsed document but keeps the fields copied out of it: the
 * worker calls it right after decoding, so a tree lives only as long as
 * its parse (docs/worker.md, "Memory budget"). */
void wk_msg_drop_doc(wk_msg *m);
/* Frees the document and resets *m; safe on a zeroed or cleared wk_msg. */
void wk_msg_clear(wk_msg *m);

/* "/OpenADR2/Simple/2.0b/EiRegisterParty" -> WK_SVC_EI_REGISTER_PARTY; a query
 * string or one trailing slash is ignored; anything else WK_SVC_NONE. */
enum wk_service wk_service_from_path(const char *path, size_t len);
const char *wk_service_name(enum wk_service svc); /* "EiRegisterParty", ... */
const char *wk_msg_name(enum wk_msg_type t);      /* "oadrPoll", ...; "" for NONE */
/* 1 if a VEN may send payload t to service svc, else 0. */
int wk_msg_allowed(enum wk_service svc, enum wk_msg_type t);
/* The payload the VTN answers t with (WK_MSG_RESPONSE for most). */
enum wk_msg_type wk_msg_reply_type(enum wk_msg_type t);

/* ---- writers: each appends one complete document (XML declaration +
 * oadrPayload) to b. 0, or -ENOBUFS/-ENOMEM from the buffer (b unchanged),
 * -EINVAL for a missing required argument. Strings are NUL-terminated UTF-8
 * and escaped here; NULL means "omit" for optional elements. desc may be
 * NULL (no responseDescription). request_id may be "" but not NULL. */

/* oadrResponse: eiResponse(code, desc, request_id), venID if ven_id != NULL. */
int wk_write_response(vtn_buf *b, int code, const char *desc, const char *request_id,
                      const char *ven_id);

typedef struct wk_created_party_registration {
    int code;                    /* responseCode */
    const char *desc;            /* responseDescription or NULL */
    const char *request_id;      /* the VEN's requestID */
    const char *registration_id; /* NULL for a query of an unregistered VEN */
    const char *ven_id;          /* NULL for a query of an unregistered VEN */
    const char *vtn_id;          /* required */
    int64_t poll_freq_ms;        /* oadrRequestedOadrPollFreq; <= 0 omits it */
    /* oadrServiceSpecificInfo is not written yet (optional in 2.0b). */
} wk_created_party_registration;
/* oadrCreatedPartyRegistration with profile 2.0b, transport simpleHttp. */
int wk_write_created_party_registration(vtn_buf *b, const wk_created_party_registration *r);

/* oadrCanceledPartyRegistration (the VTN's answer to the VEN's cancel). */
int wk_write_canceled_party_registration(vtn_buf *b, int code, const char *desc,
                                         const char *request_id, const char *registration_id,
                                         const char *ven_id);
/* oadrCancelPartyRegistration, VTN-initiated (delivered on a poll); the
 * requestID is the caller's (e.g. from vtn_id_new). */
int wk_write_cancel_party_registration(vtn_buf *b, const char *request_id,
                                       const char *registration_id, const char *ven_id);
/* oadrRequestReregistration, VTN-initiated. */
int wk_write_request_reregistration(vtn_buf *b, const char *ven_id);

/* oadrDistributeEvent: requestID, vtnID, and one oadrEvent per element of
 * events, a JSON array of events as the management API shows them
 * (docs/openapi.yaml, Event: eventStatus as it should be sent), in the
 * order given. Of an event's venID targets only ven_id is written. */
int wk_write_distribute_event(vtn_buf *b, const char *request_id, const char *vtn_id,
                              const char *ven_id, json_t *events);

/* oadrRegisteredReport with code, and one oadrReportRequest per element of
 * requests (NULL or empty: none), each {reportRequestID, reportSpecifierID,
 * granularity, reportBackDuration, rIDs: [{rID, readingType}]}. */
int wk_write_registered_report(vtn_buf *b, int code, const char *desc, const char *request_id,
                               const char *ven_id, json_t *requests);
/* oadrCreateReport, VTN-initiated: requests as above, at least one. */
int wk_write_create_report(vtn_buf *b, const char *request_id, const char *ven_id,
                           json_t *requests);
/* The VTN's own METADATA oadrRegisterReport, VTN-initiated: the VTN offers
 * no report yet, so it has no oadrReport (the schema allows none). */
int wk_write_register_report(vtn_buf *b, const char *request_id, const char *ven_id);

/* oadrCancelReport, VTN-initiated (delivered on a poll): the
 * reportRequestIDs (a JSON array of strings, at least one), reportToFollow
 * false. */
int wk_write_cancel_report(vtn_buf *b, const char *request_id, const char *ven_id, json_t *rrids);
/* oadrUpdatedReport with code; with cancel_id, it carries an
 * oadrCancelReport of that requestID for cancel_rrids (as above). */
int wk_write_updated_report(vtn_buf *b, int code, const char *desc, const char *request_id,
                            const char *ven_id, const char *cancel_id, json_t *cancel_rrids);

/* oadrCreatedOpt (optID required, "" when the VEN's could not be read) and
 * oadrCanceledOpt (optID omitted when NULL or ""), the answers to
 * oadrCreateOpt and oadrCancelOpt. */
int wk_write_created_opt(vtn_buf *b, int code, const char *desc, const char *request_id,
                         const char *opt_id);
int wk_write_canceled_opt(vtn_buf *b, int code, const char *desc, const char *request_id,
                          const char *opt_id);

/* The error reply for a failed wk_msg_parse (m->code, m->desc, m->reply),
 * echoing m->request_id (or, when the message has none of its own, the
 * requestID of its eiResponse) and m->ven_id when they were read. For an
 * oadrCreatedPartyRegistration reply vtn_id is required (it is a mandatory
 * element); poll_freq_ms as above. Also usable by handlers for their own
 * errors on any message: set m->code and m->desc first. */
int wk_write_error(vtn_buf *b, const wk_msg *m, const char *vtn_id, int64_t poll_freq_ms);

/* The xcal duration for ms, e.g. 10000 -> "PT10S", 90000 -> "PT1M30S",
 * 86400000 -> "P1D"; rounded up to whole seconds (2.0b durations have no
 * fractions), 1500 -> "PT2S". Returns out. */
const char *wk_xcal_duration(int64_t ms, char *out, size_t outlen);

#endif
