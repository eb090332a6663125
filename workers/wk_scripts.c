/* The worker's Lua scripts by name: WK_SCRIPT_* -> common/lua/<name>.lua,
 * loaded by vtn_script_load (vtn/scripts.h) in wk_redis.c. The scripts
 * themselves, what each touches and why, are in common/lua/ and
 * docs/redis-keys.md. */
#include "wk_internal.h"

const char *const wk_script_name[WK_SCRIPT__COUNT] = {
    [WK_SCRIPT_CLAIM] = "claim",
    [WK_SCRIPT_CAD] = "cad",
    [WK_SCRIPT_REGISTER] = "register",
    [WK_SCRIPT_PROVISION] = "provision",
    [WK_SCRIPT_POP] = "pop",
    [WK_SCRIPT_VENCANCEL] = "vencancel",
    [WK_SCRIPT_CANCELED] = "canceled",
    [WK_SCRIPT_APIDELETE] = "apidelete",
    [WK_SCRIPT_REREG] = "rereg",
    [WK_SCRIPT_CERTBIND] = "certbind",
    [WK_SCRIPT_CERTUNBIND] = "certunbind",
    [WK_SCRIPT_CERTREVOKE] = "certrevoke",
    [WK_SCRIPT_CRL] = "crl",
    [WK_SCRIPT_PROGRAM] = "program",
    [WK_SCRIPT_EVENT] = "event",
    [WK_SCRIPT_EVSENT] = "evsent",
    [WK_SCRIPT_MEMBERS] = "members",
    [WK_SCRIPT_PROGRAMDEL] = "programdel",
    [WK_SCRIPT_VENTARGETS] = "ventargets",
    [WK_SCRIPT_EVOPT] = "evopt",
    [WK_SCRIPT_REPREG] = "repreg",
    [WK_SCRIPT_REPSTATE] = "repstate",
    [WK_SCRIPT_TELEMETRY] = "telemetry",
    [WK_SCRIPT_REPAPI] = "repapi",
    [WK_SCRIPT_OPTCREATE] = "optcreate",
    [WK_SCRIPT_OPTCANCEL] = "optcancel",
    [WK_SCRIPT_REPPOLICY] = "reppolicy",
    [WK_SCRIPT_LASTPOLL] = "lastpoll",
};
