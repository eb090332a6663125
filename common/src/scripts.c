/* The script loader (vtn/scripts.h): constants line + embedded file, SCRIPT
 * LOAD, EVALSHA with the NOSCRIPT retry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/scripts.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* VTN_X's value as a Lua literal: "n" and 'C' are Lua strings as C spells
 * them, numbers are numbers. */
#define LUA_CONST(name)                                                                            \
    {                                                                                              \
#name, STR(VTN_##name)                                                                     \
    }

static const struct {
    const char *name;
    const char *value;
} consts[] = {
    LUA_CONST(F_VEN_NAME),
    LUA_CONST(F_VEN_FP),
    LUA_CONST(F_VEN_PROVISIONED),
    LUA_CONST(F_VEN_CREATED),
    LUA_CONST(F_VEN_REG),
    LUA_CONST(F_VEN_REG_AT),
    LUA_CONST(F_VEN_PULL),
    LUA_CONST(F_VEN_TRANSPORT),
    LUA_CONST(F_VEN_REPORT_ONLY),
    LUA_CONST(F_VEN_XML_SIG),
    LUA_CONST(F_VEN_STATE),
    LUA_CONST(F_VEN_REREG),
    LUA_CONST(F_VEN_POLL_RID),
    LUA_CONST(F_VEN_LAST_POLL),
    LUA_CONST(VEN_CANCELLING),
    LUA_CONST(F_CERT_REVOKED_AT),
    LUA_CONST(F_CERT_REASON),
    LUA_CONST(QUEUE_KIND_CANCEL),
    LUA_CONST(QUEUE_KIND_REREG),
    LUA_CONST(QUEUE_SEP),
    LUA_CONST(QUEUE_MAX),
    LUA_CONST(TTL_MEMO_S),
    LUA_CONST(TTL_AFTER_EXPIRY_S),
    LUA_CONST(F_PROGRAM_NAME),
    LUA_CONST(F_PROGRAM_MC),
    LUA_CONST(F_PROGRAM_CREATED),
    LUA_CONST(F_EVENT_BODY),
    LUA_CONST(F_EVENT_PROGRAM),
    LUA_CONST(F_EVENT_MODNUM),
    LUA_CONST(F_EVENT_REASON),
    LUA_CONST(F_EVENT_CANCELLED),
    LUA_CONST(F_EVENT_CREATED),
    LUA_CONST(F_EVENT_MODIFIED),
    LUA_CONST(F_EVENT_START),
    LUA_CONST(F_EVENT_END),
    LUA_CONST(F_VEN_EVENTS_VER),
    LUA_CONST(F_VEN_EVENTS_HASH),
    LUA_CONST(F_VEN_EVENTS_END),
    LUA_CONST(F_VEN_EVENTS_AWAIT),
    LUA_CONST(F_GROUP_NAME),
    LUA_CONST(F_GROUP_CREATED),
    LUA_CONST(F_GROUP_MODIFIED),
    LUA_CONST(F_EVENT_OPT_IN),
    LUA_CONST(F_EVENT_OPT_OUT),
    /* What events target a VEN by: the keys a membership change keeps. */
    LUA_CONST(KEY_VENTARGETS),
    LUA_CONST(KEY_GROUPVENS),
    LUA_CONST(KEY_PROGRAMVENS),
    LUA_CONST(KEY_RESOURCEVENS),
    LUA_CONST(KEY_PARTYVENS),
    LUA_CONST(KEY_PROGRAMMC),
    LUA_CONST(KEY_EVENT),
    LUA_CONST(TARGET_GROUP),
    LUA_CONST(TARGET_PROGRAM),
    LUA_CONST(TARGET_RESOURCE),
    LUA_CONST(TARGET_PARTY),
    LUA_CONST(F_EVENT_NEAR),
    LUA_CONST(F_EVENT_RECEIVED),
    LUA_CONST(QUEUE_KIND_REGREPORT),
    LUA_CONST(QUEUE_KIND_CREATEREPORT),
    LUA_CONST(QUEUE_KIND_CANCELREPORT),
    LUA_CONST(TTL_TELEMETRY_SEEN_S),
    LUA_CONST(REPORT_REQUESTS_MAX),
    LUA_CONST(OPTS_MAX),
    LUA_CONST(F_VEN_PUSH_UNDELIVERED),
    LUA_CONST(KEY_VEN),
    LUA_CONST(KEY_PUSHMARKS),
    LUA_CONST(PUSH_SEP),
};

/* The Lua names: shorter where the prefix says nothing inside a script. */
static const char *lua_name(const char *name)
{
    static const struct {
        const char *c, *lua;
    } renames[] = {
        {"QUEUE_KIND_CANCEL", "KIND_CANCEL"},
        {"QUEUE_KIND_REREG", "KIND_REREG"},
        {"QUEUE_KIND_REGREPORT", "KIND_REGREPORT"},
        {"QUEUE_KIND_CREATEREPORT", "KIND_CREATEREPORT"},
        {"QUEUE_KIND_CANCELREPORT", "KIND_CANCELREPORT"},
        {"QUEUE_SEP", "SEP"},
        {"TTL_MEMO_S", "MEMO_TTL_S"},
        {"TTL_AFTER_EXPIRY_S", "AFTER_EXPIRY_S"},
    };
    for (size_t i = 0; i < sizeof renames / sizeof renames[0]; i++)
        if (strcmp(renames[i].c, name) == 0)
            return renames[i].lua;
    return name;
}

/* push_mark(venkey): a push VEN whose venq just got an entry has its push
 * job run at once (the gateways' pushclaim takes vtn:push:marks); a pull
 * VEN waits for its poll. */
static const char helpers[] =
    "local function push_mark(vk) if redis.call('HGET', vk, F_VEN_PULL) == '0' then "
    "redis.call('SADD', KEY_PUSHMARKS, string.match(vk, '{(.*)}')) end end; ";

int vtn_script_prelude(char *out, size_t outlen)
{
    size_t o = 0;
    /* One line, so a file's line numbers shift by exactly one. */
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
        int n = snprintf(out + o, outlen > o ? outlen - o : 0, "local %s = %s; ",
                         lua_name(consts[i].name), consts[i].value);
        if (n < 0 || (size_t)n >= (outlen > o ? outlen - o : 0))
            return -ENOSPC;
        o += (size_t)n;
    }
    /* Helpers more than one script needs, on the same line. */
    size_t nh = strlen(helpers);
    if (o + nh + 2 > outlen)
        return -ENOSPC;
    memcpy(out + o, helpers, nh);
    o += nh;
    out[o++] = '\n';
    out[o] = '\0';
    return (int)o;
}

const vtn_script_file *vtn_script_find(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < vtn_script_nfiles; i++) {
        const char *f = vtn_script_files[i].name;
        if (strncmp(f, name, n) == 0 && strcmp(f + n, ".lua") == 0)
            return &vtn_script_files[i];
    }
    return NULL;
}

int vtn_script_source(const vtn_script_file *f, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    char prelude[4096];
    int np = vtn_script_prelude(prelude, sizeof prelude);
    if (np < 0)
        return np;
    /* A shebang ("#!lua flags=allow-oom") is read by Redis 7 only on the
     * first line: it stays there and the constants come after it. */
    size_t head = 0;
    if (f->len >= 2 && f->src[0] == '#' && f->src[1] == '!') {
        const unsigned char *nl = memchr(f->src, '\n', f->len);
        if (nl)
            head = (size_t)(nl - f->src) + 1;
    }
    char *src = malloc(f->len + (size_t)np);
    if (src == NULL)
        return -ENOMEM;
    memcpy(src, f->src, head);
    memcpy(src + head, prelude, (size_t)np);
    memcpy(src + head + (size_t)np, f->src + head, f->len - head);
    *out = src;
    *outlen = f->len + (size_t)np;
    return 0;
}

int vtn_script_load(redisContext *c, const char *name, char sha[VTN_SCRIPT_SHA_SIZE], char *err,
                    size_t errlen)
{
    const vtn_script_file *f = vtn_script_find(name);
    if (f == NULL) {
        snprintf(err, errlen, "no script %s", name);
        return -ENOENT;
    }
    size_t len = 0;
    char *src = NULL;
    int rc = vtn_script_source(f, &src, &len);
    if (rc < 0) {
        snprintf(err, errlen, "%s", rc == -ENOMEM ? "out of memory" : "constants line too long");
        return rc == -ENOMEM ? -ENOMEM : -EPROTO;
    }
    redisReply *rep = redisCommand(c, "SCRIPT LOAD %b", src, len);
    free(src);
    if (rep == NULL) {
        snprintf(err, errlen, "%s", c->errstr[0] ? c->errstr : "SCRIPT LOAD failed");
        return -EIO;
    }
    if (rep->type == REDIS_REPLY_STRING && rep->len == VTN_SCRIPT_SHA_SIZE - 1) {
        memcpy(sha, rep->str, VTN_SCRIPT_SHA_SIZE - 1);
        sha[VTN_SCRIPT_SHA_SIZE - 1] = '\0';
    } else {
        snprintf(err, errlen, "%.*s", rep->str ? (int)rep->len : 16,
                 rep->str ? rep->str : "unexpected reply");
        rc = -EPROTO;
    }
    freeReplyObject(rep);
    return rc;
}

int vtn_script_is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

#define EVAL_ARGS_MAX 16

redisReply *vtn_script_eval(redisContext *c, const char *name, char sha[VTN_SCRIPT_SHA_SIZE],
                            int nkeys, int argc, const char **argv)
{
    if (argc < 0 || nkeys < 0 || nkeys > argc)
        return NULL;
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    /* Most calls fit on the stack; a batch (the scheduler's) takes the heap. */
    const char *small[EVAL_ARGS_MAX + 3];
    const char **av = argc <= EVAL_ARGS_MAX ? small : malloc((size_t)(argc + 3) * sizeof *av);
    if (av == NULL)
        return NULL;
    av[0] = "EVALSHA";
    av[1] = sha;
    av[2] = nk;
    memcpy(av + 3, argv, (size_t)argc * sizeof *argv);
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sha[0] == '\0') {
            char err[256];
            int rc = vtn_script_load(c, name, sha, err, sizeof err);
            if (rc < 0) {
                char q[300];
                vtn_error("redis_script", "script=%s err=%s", name,
                          vtn_log_quote(q, sizeof q, err, strlen(err)));
                break;
            }
        }
        r = redisCommandArgv(c, argc + 3, av, NULL);
        if (!vtn_script_is_noscript(r))
            break;
        freeReplyObject(r);
        r = NULL;
        sha[0] = '\0'; /* Redis lost it: load again, then repeat once */
    }
    if (av != small)
        free(av);
    return r;
}
