/* The one list of OpenADR 2.0b payloads (as redis' command table is the one
 * list of commands). Every message table is generated from it: the codec's
 * element names, reply types and accepting services (wk_codec.c), the
 * metrics label (wk_msg_name), and the oadr room's route table
 * (oadr/wk_oadr.c). Adding a service is editing rows here, then writing the
 * handler (docs/worker.md, "Adding a service").
 *
 * X(id, element, reply, services, wrapped, handler):
 *   id       WK_MSG_<id>
 *   element  local name of the payload element in the oadr namespace
 *   reply    WK_MSG_<reply>: what the VTN answers it with (also for errors)
 *   services the endpoints that accept it from a VEN: WK_S_<service> bits
 *            (WK_S_NONE: written by the VTN only, refused from a VEN)
 *   wrapped  1: its fields sit one level down (pyld:eiRequestEvent, ...)
 *   handler  the oadr room's handler: wk_h_<handler>; later: a valid message
 *            whose service comes later (453 after the venID check); vtn:
 *            never from a VEN
 * The order is the enum's: VEN -> VTN messages first, then VTN -> VEN. */
#ifndef WK_MESSAGES_H
#define WK_MESSAGES_H

#define WK_MESSAGES(X)                                                                             \
    X(QUERY_REGISTRATION, "oadrQueryRegistration", CREATED_PARTY_REGISTRATION,                     \
      WK_S_REGISTER_PARTY, 0, query_registration)                                                  \
    X(CREATE_PARTY_REGISTRATION, "oadrCreatePartyRegistration", CREATED_PARTY_REGISTRATION,        \
      WK_S_REGISTER_PARTY, 0, create_registration)                                                 \
    X(CANCEL_PARTY_REGISTRATION, "oadrCancelPartyRegistration", CANCELED_PARTY_REGISTRATION,       \
      WK_S_REGISTER_PARTY, 0, cancel_registration)                                                 \
    X(CANCELED_PARTY_REGISTRATION, "oadrCanceledPartyRegistration", RESPONSE, WK_S_REGISTER_PARTY, \
      0, canceled_registration)                                                                    \
    /* The answer to VTN-initiated messages of every service; VENs differ in where they post it,   \
     * so every endpoint takes it. */                                                              \
    X(RESPONSE, "oadrResponse", RESPONSE, WK_S_ALL, 0, response)                                   \
    X(POLL, "oadrPoll", RESPONSE, WK_S_POLL, 0, poll)                                              \
    X(REQUEST_EVENT, "oadrRequestEvent", DISTRIBUTE_EVENT, WK_S_EVENT, 1, request_event)           \
    X(CREATED_EVENT, "oadrCreatedEvent", RESPONSE, WK_S_EVENT, 1, created_event)                   \
    X(REGISTER_REPORT, "oadrRegisterReport", REGISTERED_REPORT, WK_S_REPORT, 0, register_report)   \
    X(REGISTERED_REPORT, "oadrRegisteredReport", RESPONSE, WK_S_REPORT, 0, registered_report)      \
    X(CREATE_REPORT, "oadrCreateReport", CREATED_REPORT, WK_S_REPORT, 0, later)                    \
    X(CREATED_REPORT, "oadrCreatedReport", RESPONSE, WK_S_REPORT, 0, created_report)               \
    X(UPDATE_REPORT, "oadrUpdateReport", UPDATED_REPORT, WK_S_REPORT, 0, update_report)            \
    X(CANCEL_REPORT, "oadrCancelReport", CANCELED_REPORT, WK_S_REPORT, 0, later)                   \
    X(CANCELED_REPORT, "oadrCanceledReport", RESPONSE, WK_S_REPORT, 0, canceled_report)            \
    X(CREATE_OPT, "oadrCreateOpt", CREATED_OPT, WK_S_OPT, 0, create_opt)                           \
    X(CANCEL_OPT, "oadrCancelOpt", CANCELED_OPT, WK_S_OPT, 0, cancel_opt)                          \
    X(CREATED_PARTY_REGISTRATION, "oadrCreatedPartyRegistration", RESPONSE, WK_S_NONE, 0, vtn)     \
    X(REQUEST_REREGISTRATION, "oadrRequestReregistration", RESPONSE, WK_S_NONE, 0, vtn)            \
    X(DISTRIBUTE_EVENT, "oadrDistributeEvent", RESPONSE, WK_S_NONE, 0, vtn)                        \
    X(UPDATED_REPORT, "oadrUpdatedReport", RESPONSE, WK_S_NONE, 0, vtn)                            \
    X(CREATED_OPT, "oadrCreatedOpt", RESPONSE, WK_S_NONE, 0, vtn)                                  \
    X(CANCELED_OPT, "oadrCanceledOpt", RESPONSE, WK_S_NONE, 0, vtn)

/* The services column: bits of enum wk_service (wk_codec.h). */
#define WK_S_NONE 0u
#define WK_S_REGISTER_PARTY (1u << WK_SVC_EI_REGISTER_PARTY)
#define WK_S_EVENT (1u << WK_SVC_EI_EVENT)
#define WK_S_REPORT (1u << WK_SVC_EI_REPORT)
#define WK_S_OPT (1u << WK_SVC_EI_OPT)
#define WK_S_POLL (1u << WK_SVC_OADR_POLL)
#define WK_S_ALL (WK_S_REGISTER_PARTY | WK_S_EVENT | WK_S_REPORT | WK_S_OPT | WK_S_POLL)

#endif
