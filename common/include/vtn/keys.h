/* The Redis data model shared by workers and scheduler: every key pattern,
 * hash field, queue entry kind, limit and lifetime. docs/redis-keys.md
 * describes each one; tests/unit/check_redis_keys.py fails when the page and
 * this header disagree, and the protocol cases' fixtures (tests/protocol/
 * run.py) build their Redis state from this header, so a layout change is
 * made here, once.
 *
 * A key pattern is written as the page spells it: each <name> is a part
 * the builder fills in, in order. The Lua scripts (common/lua/) get the
 * fields, kinds and limits from vtn_script_load, never as literals. */
#ifndef VTN_KEYS_H
#define VTN_KEYS_H

#include <stddef.h>

/* Bytes a built key may take, with its NUL. Callers pass values capped by
 * the codec or the API parser (ids, names, fingerprints), so a key always
 * fits; a longer one is cut, which can only make a lookup miss. */
#define VTN_KEY_MAX 400

/* ---- per-VEN keys: the {venID} hash tag keeps a VEN's keys on one slot ---- */
#define VTN_KEY_VEN "ven:{<venID>}"             /* HASH, the VEN record (VTN_F_VEN_*) */
#define VTN_KEY_VENQ "venq:{<venID>}"           /* LIST, messages queued for polls */
#define VTN_KEY_VENPM "venpm:{<venID>}"         /* STRING, the entry the last poll popped */
#define VTN_KEY_VENREQ "venreq:{<venID>}:<rid>" /* STRING, a mutating request's outcome */
#define VTN_KEY_VENCERTS "vencerts:{<venID>}"   /* ZSET, serials issued for the VEN */
/* SET, what events can target the VEN by, each member "<kind>:<id>" (the
 * VTN_TARGET_* prefixes): its groups, programs, resourceIDs and partyIDs. A
 * poll that recomputes the VEN's events reads this one set. */
#define VTN_KEY_VENTARGETS "ventargets:{<venID>}"
/* Reports (docs/reports.md): the VEN's METADATA reports as JSON (replaced by
 * each oadrRegisterReport), the VTN's report requests to it (reportRequestID
 * -> JSON record), and the report requests the VEN made of the VTN's
 * reports (JSON array, from its oadrRegisteredReport). */
#define VTN_KEY_VENREPORTS "venreports:{<venID>}" /* STRING, JSON */
#define VTN_KEY_VENRR "venrr:{<venID>}"           /* HASH reportRequestID -> JSON */
#define VTN_KEY_VENASKED "venasked:{<venID>}"     /* STRING, JSON */
/* EiOpt (docs/opt.md): the VEN's opts, optID -> JSON record (its opt
 * schedules and its opts for one event), at most VTN_OPTS_MAX. */
#define VTN_KEY_VENOPTS "venopts:{<venID>}" /* HASH optID -> JSON */

/* ---- global keys ---- */
#define VTN_KEY_GATEWAYS "vtn:gateways"              /* ZSET zmq endpoint -> expiry ms */
#define VTN_KEY_VENS "vtn:vens"                      /* ZSET every venID, score 0 */
#define VTN_KEY_VENNAME "vtn:venname:<venName>"      /* STRING -> venID */
#define VTN_KEY_VENFP "vtn:venfp:<fingerprint>"      /* STRING -> venID */
#define VTN_KEY_VENREG "vtn:venreg:<registrationID>" /* STRING -> venID */
#define VTN_KEY_REQ "vtn:req:<rid>"                  /* STRING "<venID> <registrationID>" */
#define VTN_KEY_CERT "vtn:cert:<serial>"    /* HASH, an issued certificate (VTN_F_CERT_*) */
#define VTN_KEY_CERTS "vtn:certs"           /* ZSET every serial, score 0 */
#define VTN_KEY_CERTREQ "vtn:certreq:<rid>" /* STRING, JSON of what a request issued */
#define VTN_KEY_REVOKEDFP "vtn:revokedfp:<fingerprint>" /* STRING -> serial */
/* The two keys of one CA share its hash tag: the crl script reads and bumps
 * them together, so a CRL number never goes with an older list. */
#define VTN_KEY_CA_REVOKED "vtn:ca:{<caID>}:revoked"     /* ZSET, the CRL's entries */
#define VTN_KEY_CA_CRLNUMBER "vtn:ca:{<caID>}:crlnumber" /* STRING counter */
#define VTN_KEY_SCHED_LEADER "vtn:scheduler:leader"      /* STRING "<epoch> <instance>", PX lease */
#define VTN_KEY_SCHED_EPOCH "vtn:scheduler:epoch"        /* STRING counter, the fencing token */

/* Every VEN's opt schedules, for the participation the API computes: the
 * member a JSON summary ({"v": venID, "o": optID, "t": "i"|"o", "mc":
 * marketContext or absent, "c": [[start ms, end ms], ...]}), the score the
 * end of its last component (ms), so that a read takes those not ended
 * before an event's start in one ZRANGE. Ended ones are trimmed by each
 * oadrCreateOpt. */
#define VTN_KEY_OPTSCHED "vtn:opts:sched" /* ZSET */

/* venID -> until when it counts as online (ms): its last poll plus two of
 * its poll intervals, written with VTN_F_VEN_LAST_POLL; ZCOUNT from now
 * counts the VENs online, ZRANGE BYSCORE lists them. */
#define VTN_KEY_VENSONLINE "vtn:vens:online" /* ZSET */
/* Every process' heartbeat (gateway, worker, scheduler): "<role>:<id>" ->
 * JSON {role, id, host, pid, version, startedAt, lastSeen (ms), interval,
 * the rates over its last interval, inFlight}, one HSET every
 * VTN_PROC_HEARTBEAT_MS; GET /api/v1/health reads it and removes the
 * entries older than VTN_PROC_PRUNE_MS. */
#define VTN_KEY_PROCS "vtn:procs" /* HASH */

/* ---- fields of ven:{<venID>} ---- */
#define VTN_F_VEN_NAME "n"         /* venName */
#define VTN_F_VEN_FP "fp"          /* bound certificate fingerprint, normalised */
#define VTN_F_VEN_PROVISIONED "pv" /* "1": provisioned through the API */
#define VTN_F_VEN_CREATED "ct"     /* created at, ms */
#define VTN_F_VEN_REG "r"          /* registrationID; present only while registered */
#define VTN_F_VEN_REG_AT "rt"      /* last (re-)registration, ms */
#define VTN_F_VEN_PULL "pl"        /* "1" pull, "0" push */
#define VTN_F_VEN_TRANSPORT "ta"   /* oadrTransportAddress */
#define VTN_F_VEN_REPORT_ONLY "ro" /* "1"/"0" */
#define VTN_F_VEN_XML_SIG "xs"     /* "1"/"0" */
#define VTN_F_VEN_STATE "st"       /* VTN_VEN_CANCELLING while a VTN cancel is under way */
#define VTN_F_VEN_REREG "rq"       /* "1": a VTN-initiated reregistration is pending */
#define VTN_F_VEN_POLL_RID "pr"    /* <rid> of the last poll that popped an entry */
/* What the VEN last received of its events (docs/redis-keys.md): the
 * vtn:events:ver it was computed at, a hash of its event set, the earliest
 * end among those events (ms; 0: none), and "1" when one of them needs an
 * answer the VEN has not given. */
#define VTN_F_VEN_EVENTS_VER "ev"
#define VTN_F_VEN_EVENTS_HASH "eh"
#define VTN_F_VEN_EVENTS_END "en"
#define VTN_F_VEN_EVENTS_AWAIT "ea"
/* Push mode: "<ms> <attempts> <reason>" once a gateway gave up delivering
 * to the VEN; removed by the next delivery that succeeds. */
#define VTN_F_VEN_PUSH_UNDELIVERED "pu"
/* The VEN's report request policy (docs/reports.md), JSON; set through the
 * API, gone with the record. */
#define VTN_F_VEN_REPORT_POLICY "rp"
/* "<last poll ms> <poll frequency ms>": the VEN's last poll (0 before its
 * first), written by a poll only when the stored one is older than
 * VTN_LASTPOLL_STEP_MS or a quarter of its poll frequency, whichever is
 * less, so it lags the real last poll by at most that; and the
 * oadrRequestedOadrPollFreq the VTN gave it at its last registration
 * ("online" is a poll within two of these). One field, so a poll reads
 * both with one more HMGET field. */
#define VTN_F_VEN_LAST_POLL "lp"
#define VTN_VEN_CANCELLING "c"

/* ---- fields of vtn:cert:<serial> ---- */
#define VTN_F_CERT_VEN "v"         /* venID it was issued for */
#define VTN_F_CERT_FP "f"          /* its fingerprint, normalised */
#define VTN_F_CERT_CN "cn"         /* subject commonName */
#define VTN_F_CERT_KEY "k"         /* "ec" or "rsa" */
#define VTN_F_CERT_GENERATED "g"   /* "1" the VTN generated the key, "0" from a CSR */
#define VTN_F_CERT_NOT_BEFORE "nb" /* ms */
#define VTN_F_CERT_NOT_AFTER "na"  /* ms */
#define VTN_F_CERT_ISSUED_AT "ia"  /* ms */
#define VTN_F_CERT_CA "ca"         /* issuing CA id (its normalised fingerprint) */
#define VTN_F_CERT_REVOKED_AT "rv" /* ms, once revoked */
#define VTN_F_CERT_REASON "rr"     /* CRL reason code, once revoked */

/* ---- venq:{<venID>} entries: "<kind>|<field>|..." ---- */
#define VTN_QUEUE_KIND_CANCEL 'C' /* C|<requestID>|<registrationID> */
#define VTN_QUEUE_KIND_REREG 'R'  /* R|<requestID> */
/* The VTN's METADATA oadrRegisterReport, queued at registration. */
#define VTN_QUEUE_KIND_REGREPORT 'M' /* M|<requestID> */
/* oadrCreateReport: the third field is the JSON array of the report
 * requests (as in venrr), so the poll renders it without another read. */
#define VTN_QUEUE_KIND_CREATEREPORT 'Q' /* Q|<requestID>|<JSON> */
/* oadrCancelReport of one of the VTN's report requests (the API's DELETE). */
#define VTN_QUEUE_KIND_CANCELREPORT 'K' /* K|<requestID>|<reportRequestID> */
#define VTN_QUEUE_SEP '|'
#define VTN_QUEUE_MAX 64 /* entries in one venq; a full queue answers 409 */

/* ---- lifetimes ---- */
#define VTN_TTL_MEMO_S 300 /* vtn:req:*, vtn:certreq:*, venreq:*, venpm:* */
/* How long an expired certificate's traces stay (vtn:revokedfp:*, CRL
 * entries): a day past notAfter covers clock skew; TLS refuses it anyway. */
#define VTN_TTL_AFTER_EXPIRY_S 86400
#define VTN_TTL_GATEWAY_MS 5000       /* a vtn:gateways member's score: now + this */
#define VTN_TTL_GATEWAY_TRIM_MS 60000 /* members expired this long ago are removed */
#define VTN_LASTPOLL_STEP_MS 60000    /* lp is rewritten at least this often while polling */
#define VTN_PROC_HEARTBEAT_MS 2000    /* a process' vtn:procs entry is rewritten this often */
#define VTN_PROC_DEAD_BEATS 3         /* an entry this many beats old reads alive: false */
#define VTN_PROC_PRUNE_MS 3600000     /* an entry this old is removed */
/* Events removed per run of the scheduler's expire_events task. */
#define VTN_EVENTS_EXPIRE_BATCH 100
/* Due status transitions applied per run of its event_transitions task. */
#define VTN_EVENTS_DUE_BATCH 100

/* ---- programs and events (docs/redis-keys.md, "Programs and events") ---- */
#define VTN_KEY_PROGRAM "vtn:program:<programID>"         /* HASH (VTN_F_PROGRAM_*) */
#define VTN_KEY_PROGRAMS "vtn:programs"                   /* ZSET every programID, score 0 */
#define VTN_KEY_PROGRAMMC "vtn:programmc:<marketContext>" /* STRING -> programID */
#define VTN_KEY_GROUP "vtn:group:<groupID>"               /* HASH (VTN_F_GROUP_*) */
#define VTN_KEY_GROUPVENS "vtn:group:<groupID>:vens"      /* SET, its venIDs */
#define VTN_KEY_GROUPS "vtn:groups"                       /* ZSET every groupID, score 0 */
#define VTN_KEY_EVENT "vtn:event:<eventID>"               /* HASH (VTN_F_EVENT_*) */
/* An event's participation, split into VTN_EVENT_VENS_SHARDS hashes by
 * vtn_event_vens_shard(venID): venID -> "<received mn> <answered mn> <i|o>
 * <responseCode> <ms>", the modificationNumber the VEN was last sent in a
 * distribute, and its last oadrCreatedEvent answer (i optIn, o optOut; "-"
 * in each answer part until it answers), then, when the VEN sent an
 * oadrCreateOpt for the event, a sixth part: that opt's letter (i or o),
 * which oadrCreatedEvent answers no longer change (rule 206; the event's
 * optIn/optOut counts follow it). One field per VEN that received
 * or answered the event. Small hashes stay listpacks in Redis (at most
 * hash-max-listpack-entries, 128, fields): 1,024 shards hold 100,000 VENs
 * an event at about 98 a shard, where one hash of 10,000 fields is a
 * hashtable costing ~47 bytes more a field (docs/redis-keys.md,
 * "Memory"). Build with vtn_key_eventvens(). */
#define VTN_KEY_EVENTVENS "vtn:event:<eventID>:vens:<shard>" /* HASH */
#define VTN_EVENT_VENS_SHARDS 1024                           /* a power of two */
#define VTN_KEY_EVENTS "vtn:events"                          /* ZSET every eventID, score 0 */
/* Bumped (INCR) by every create, modify and cancel (and once by a change of
 * a group's or program's members, of a VEN's resourceIDs and partyIDs, and
 * by a VEN's deletion): one write per change,
 * whatever the number of VENs it targets; a VEN compares it with what it
 * last received. */
#define VTN_KEY_EVENTSVER "vtn:events:ver" /* STRING counter */

/* ---- push mode (docs/gateway.md, "Push mode") ---- */
/* ZSET, every push-mode VEN -> when a gateway runs its push job next (ms):
 * now when something became due, the lease's end while a gateway holds the
 * job, the retry time after a failure, else the recheck time. */
#define VTN_KEY_PUSHDUE "vtn:push:due"
/* HASH venID -> "<owner>|<attempts>|<rid>|<since ms>": the VENs whose job is
 * leased (owner: the gateway's instance id) or waiting for a retry (owner
 * empty); rid is the poll whose message is being delivered. */
#define VTN_KEY_PUSHJOBS "vtn:push:jobs"
/* SET of venIDs that became due again while a gateway held their job. */
#define VTN_KEY_PUSHDIRTY "vtn:push:dirty"
/* SET of push venIDs something was queued for (venq): the next pushclaim
 * makes them due (the scripts that queue cannot tell a leased job). */
#define VTN_KEY_PUSHMARKS "vtn:push:marks"
/* STRING, the vtn:events:ver every push VEN was last made due for. */
#define VTN_KEY_PUSHVER "vtn:push:ver"
#define VTN_PUSH_SEP '|'
/* eventID -> its end (dtstart + duration, ms): the scheduler removes the
 * events that ended longer than the retention ago. */
#define VTN_KEY_EVENTSEND "vtn:events:end" /* ZSET */
/* eventID -> its next status transition (near, start or end, ms): the
 * scheduler bumps vtn:events:ver when it is due, so that VENs get the new
 * eventStatus (or the event dropping out at its end). */
#define VTN_KEY_EVENTSDUE "vtn:events:due" /* ZSET */

/* The reverse indexes of vtn:ventargets members (kind value -> venIDs): the
 * API checks "a target that matches nothing" with them, and the VEN's
 * deletion cleans them. */
#define VTN_KEY_PROGRAMVENS "vtn:program:<programID>:vens"    /* ZSET enrolled venIDs, score 0 */
#define VTN_KEY_RESOURCEVENS "vtn:resource:<resourceID>:vens" /* SET, the VENs with it */
#define VTN_KEY_PARTYVENS "vtn:party:<partyID>:vens"          /* SET, the VENs with it */

/* ---- members of ventargets:{<venID>}: "<prefix><id>" ---- */
#define VTN_TARGET_GROUP "g:"    /* a groupID (vtn:group:<groupID>:vens has the VEN) */
#define VTN_TARGET_PROGRAM "p:"  /* a programID the VEN is enrolled in */
#define VTN_TARGET_RESOURCE "r:" /* a resourceID the operator recorded for the VEN */
#define VTN_TARGET_PARTY "y:"    /* a partyID the operator recorded for the VEN */

/* ---- fields of vtn:program:<programID> ---- */
#define VTN_F_PROGRAM_NAME "n"     /* name */
#define VTN_F_PROGRAM_MC "mc"      /* marketContext URI */
#define VTN_F_PROGRAM_CREATED "ct" /* ms */

/* ---- fields of vtn:group:<groupID> ---- */
#define VTN_F_GROUP_NAME "n"      /* name */
#define VTN_F_GROUP_CREATED "ct"  /* ms */
#define VTN_F_GROUP_MODIFIED "mt" /* ms, last change of its members */

/* ---- fields of vtn:event:<eventID> ---- */
#define VTN_F_EVENT_BODY "j"      /* JSON: the validated event as the API took it */
#define VTN_F_EVENT_PROGRAM "p"   /* programID */
#define VTN_F_EVENT_MODNUM "mn"   /* modificationNumber */
#define VTN_F_EVENT_REASON "mr"   /* modificationReason of the last change */
#define VTN_F_EVENT_CANCELLED "x" /* "1" once cancelled */
#define VTN_F_EVENT_CREATED "ct"  /* createdDateTime, ms */
#define VTN_F_EVENT_MODIFIED "mt" /* last change, ms */
#define VTN_F_EVENT_START "s"     /* dtstart, ms */
#define VTN_F_EVENT_END "e"       /* dtstart + duration, ms */
#define VTN_F_EVENT_NEAR "nr"     /* near from, ms: dtstart - rampUp (else notification) */
#define VTN_F_EVENT_OPT_IN "ci"   /* VENs whose last answer is optIn */
#define VTN_F_EVENT_OPT_OUT "co"  /* VENs whose last answer is optOut */
#define VTN_F_EVENT_RECEIVED "cr" /* VENs that received it (fields of vtn:event:<id>:vens) */

/* ---- telemetry (docs/reports.md): one stream for every VEN's interval
 * data, one entry per oadrReport with its values packed, read by the
 * utility's consumers with XREADGROUP; the keys that
 * make an oadrUpdateReport stored once share its hash tag, so the one
 * script that checks and adds runs on one Redis Cluster slot. ---- */
#define VTN_KEY_TELEMETRY "vtn:{telemetry}" /* STREAM (docs/reports.md, entry format) */
/* "1" while a report (VEN, reportRequestID, eiReportID/createdDateTime)
 * counts as stored: its resend adds nothing. */
#define VTN_KEY_TELEMETRY_SEEN "vtn:{telemetry}:seen:<venID>:<reportKey>" /* STRING */
#define VTN_TTL_TELEMETRY_SEEN_S 86400 /* how long a resend is recognised */
/* EiOpt: opts kept per VEN (schedules and event opts together; one more is
 * refused with 451); an event opt is dropped this long after the end its
 * event had when the opt was made (ms). */
#define VTN_OPTS_MAX 64
#define VTN_OPT_EVENT_KEEP_MS 86400000
/* Schedules one participation read considers at most. */
#define VTN_OPT_SCHED_READ_MAX 100000
/* Report requests kept per VEN: past it, superseded ones are removed first. */
#define VTN_REPORT_REQUESTS_MAX 64

/* ---- report requests over time (docs/reports.md): global indexes the
 * scheduler reads, each member "<venID>|<reportRequestID>". A worker or the
 * scheduler writes a request's record (venrr, the VEN's slot) and its index
 * entry in separate commands; the scheduler treats an entry whose record is
 * gone or moved on as stale and removes it. ---- */
/* A report request the API made for a future time -> its sendAt (ms): the
 * scheduler's report_requests task queues its oadrCreateReport when due. */
#define VTN_KEY_REPORTS_SEND "vtn:reports:send" /* ZSET */
/* Every report request sent and not over -> when the scheduler looks at it
 * next (ms): at its start, then at its overdue deadline (the later of its
 * start and its last update, plus VTN_REPORT_OVERDUE_FACTOR times its
 * reportBackDuration), so the check costs O(due items). */
#define VTN_KEY_REPORTS_CHECK "vtn:reports:check" /* ZSET */
/* Report request policies (docs/reports.md): "default" and "p:<programID>"
 * (a program's, VTN_TARGET_PROGRAM + its id) -> policy JSON. A VEN's own is
 * the VTN_F_VEN_REPORT_POLICY field of its record. */
#define VTN_KEY_REPORTPOLICIES "vtn:reportpolicies" /* HASH */
/* The report requests now overdue -> since when (ms, their deadline). */
#define VTN_KEY_REPORTS_OVERDUE "vtn:reports:overdue" /* ZSET */
/* Entries each scheduler task handles per run. */
#define VTN_REPORTS_SEND_BATCH 100
#define VTN_REPORTS_CHECK_BATCH 100
/* How far ahead the API accepts a sendAt: a year and a day. */
#define VTN_REPORT_SEND_AHEAD_MAX_MS (366LL * 86400 * 1000)
/* A report request the scheduler could not act on (its VEN's queue full, a
 * record its script cannot read) is looked at again this later. */
#define VTN_REPORTS_RETRY_MS 60000

/* Builds a key from a VTN_KEY_* pattern: each <name> in it is replaced by
 * the next of a, b (NULL when the pattern has fewer parts), e.g.
 * vtn_key_build(k, VTN_KEY_VENREQ, ven_id, rid). One builder for every key,
 * so a key's shape lives only in its pattern. out must hold VTN_KEY_MAX
 * bytes; returns out. */
const char *vtn_key_build(char *out, const char *pattern, const char *a, const char *b);

/* The participation shard of a venID: FNV-1a (32 bits) of its bytes, mod
 * VTN_EVENT_VENS_SHARDS. Computed by the caller, not in Lua, because a
 * script must be handed every key it touches; tests/lib/vtntest computes
 * the same. */
unsigned vtn_event_vens_shard(const char *ven_id);
/* vtn:event:<eventID>:vens:<shard> of VTN_KEY_EVENTVENS; out holds
 * VTN_KEY_MAX bytes; returns out. */
const char *vtn_key_eventvens(char *out, const char *event_id, unsigned shard);

#endif
