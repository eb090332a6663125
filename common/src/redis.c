#include "vtn/redis.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/config.h"
#include "vtn/log.h"

int vtn_redis_url_parse(const char *url, vtn_redis_target *out)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (url == NULL)
        return -EINVAL;
    if (strncmp(url, "redis+unix://", 13) == 0) {
        const char *path = url + 13;
        const char *q = strchr(path, '?');
        size_t n = q ? (size_t)(q - path) : strlen(path);
        if (n == 0 || n >= sizeof out->unix_path)
            return -EINVAL;
        memcpy(out->unix_path, path, n);
        if (q) {
            if (strncmp(q, "?db=", 4) != 0)
                return -EINVAL;
            char *end;
            long db = strtol(q + 4, &end, 10);
            if (*end || db < 0 || db > 15)
                return -EINVAL;
            out->db = (int)db;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -EINVAL;
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *cred = p;
        const char *colon = memchr(cred, ':', (size_t)(at - cred));
        const char *pw = colon ? colon + 1 : cred; /* user:password or password */
        size_t n = (size_t)(at - pw);
        if (n >= sizeof out->password)
            return -EINVAL;
        memcpy(out->password, pw, n);
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hostport);
    size_t hlen = colon ? (size_t)(colon - p) : hostport;
    if (hlen == 0 || hlen >= sizeof out->host)
        return -EINVAL;
    memcpy(out->host, p, hlen);
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != p + hostport || port <= 0 || port > 65535)
            return -EINVAL;
        out->port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 15)
            return -EINVAL;
        out->db = (int)db;
    }
    return 0;
}

int vtn_redis_sentinels_parse(const char *list, vtn_redis_target *out)
{
    out->nsentinels = 0;
    const char *p;
    size_t n;
    while (vtn_cfg_list_next(&list, &p, &n)) {
        if (n == 0 || out->nsentinels == VTN_REDIS_SENTINELS_MAX)
            return -EINVAL;
        vtn_redis_sentinel *s = &out->sentinel[out->nsentinels];
        const char *host = p, *port = NULL;
        size_t hlen = n;
        if (*p == '[') { /* [v6]:port */
            const char *rb = memchr(p, ']', n);
            if (rb == NULL)
                return -EINVAL;
            host = p + 1;
            hlen = (size_t)(rb - host);
            if (rb + 1 < p + n) {
                if (rb[1] != ':')
                    return -EINVAL;
                port = rb + 2;
            }
        } else {
            const char *colon = memchr(p, ':', n);
            if (colon) {
                if (memchr(colon + 1, ':', (size_t)(p + n - colon - 1)))
                    return -EINVAL; /* a bare IPv6 address: ambiguous without brackets */
                hlen = (size_t)(colon - p);
                port = colon + 1;
            }
        }
        if (hlen == 0 || hlen >= sizeof s->host)
            return -EINVAL;
        memcpy(s->host, host, hlen);
        s->host[hlen] = '\0';
        s->port = VTN_REDIS_SENTINEL_PORT;
        if (port) {
            long v = 0;
            const char *q = port;
            for (; q < p + n && *q >= '0' && *q <= '9' && v <= 65535; q++)
                v = v * 10 + (*q - '0');
            if (q == port || q != p + n || v <= 0 || v > 65535)
                return -EINVAL;
            s->port = (int)v;
        }
        out->nsentinels++;
    }
    return out->nsentinels > 0 ? 0 : -EINVAL;
}

int vtn_redis_target_init(vtn_redis_target *t, const char *url, const char *sentinels,
                          const char *master, const char *sentinel_password, char *err,
                          size_t errlen)
{
    int sentinel_mode = sentinels && *sentinels;
    if (!sentinel_mode) {
        if (master && *master) {
            snprintf(err, errlen,
                     "VTN_REDIS_SENTINEL_MASTER is set but VTN_REDIS_SENTINELS is "
                     "empty: set both, or neither");
            return -EINVAL;
        }
        if (sentinel_password && *sentinel_password) {
            snprintf(err, errlen,
                     "VTN_REDIS_SENTINEL_PASSWORD is set but VTN_REDIS_SENTINELS "
                     "is empty");
            return -EINVAL;
        }
        if (vtn_redis_url_parse(url, t) < 0) {
            snprintf(err, errlen, "VTN_REDIS_URL: \"%s\" is not a redis:// or redis+unix:// URL",
                     url ? url : "");
            return -EINVAL;
        }
        return 0;
    }
    if (url && *url) {
        if (vtn_redis_url_parse(url, t) < 0 || t->unix_path[0]) {
            snprintf(err, errlen,
                     "VTN_REDIS_URL: \"%s\" is not a redis:// URL (with VTN_REDIS_SENTINELS it "
                     "gives only the password and db; its host is not used)",
                     url);
            return -EINVAL;
        }
    } else {
        memset(t, 0, sizeof *t);
    }
    t->host[0] = '\0'; /* the sentinels say where */
    t->port = 0;
    if (vtn_redis_sentinels_parse(sentinels, t) < 0) {
        snprintf(err, errlen,
                 "VTN_REDIS_SENTINELS: \"%s\" is not a list of 1 to %d host:port addresses "
                 "separated by commas",
                 sentinels, VTN_REDIS_SENTINELS_MAX);
        return -EINVAL;
    }
    if (!master || !*master || strlen(master) >= sizeof t->master || strpbrk(master, " \t\r\n")) {
        snprintf(err, errlen,
                 "VTN_REDIS_SENTINEL_MASTER: needed with VTN_REDIS_SENTINELS, a name without "
                 "spaces of at most %zu bytes",
                 sizeof t->master - 1);
        return -EINVAL;
    }
    strcpy(t->master, master);
    size_t pwlen = sentinel_password ? strlen(sentinel_password) : 0;
    if (pwlen >= sizeof t->sentinel_password) {
        snprintf(err, errlen, "VTN_REDIS_SENTINEL_PASSWORD: longer than %zu bytes",
                 sizeof t->sentinel_password - 1);
        return -EINVAL;
    }
    memcpy(t->sentinel_password, sentinel_password ? sentinel_password : "", pwlen + 1);
    return 0;
}

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/* One command whose reply only needs to be "not an error"; 0 or -EIO with err set. */
static int command_ok(redisContext *c, const char *what, char *err, size_t errlen, const char *fmt,
                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, errlen, "%s failed: %s", what, r ? r->str : c->errstr);
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -EIO;
}

static redisContext *open_tcp(const char *host, int port, int timeout_ms, const char *password,
                              char *err, size_t errlen)
{
    struct timeval tv = ms_tv(timeout_ms);
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "connect %s:%d: %s", host, port, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (password && *password && command_ok(c, "AUTH", err, errlen, "AUTH %s", password) < 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int vtn_redis_sentinel_ask(const vtn_redis_target *t, const vtn_redis_sentinel *s, char *host,
                           size_t hostlen, int *port, char *err, size_t errlen)
{
    char why[512]; /* a host (255) and hiredis' errstr (128) fit */
    redisContext *c = open_tcp(s->host, s->port, VTN_REDIS_SENTINEL_TIMEOUT_MS,
                               t->sentinel_password, why, sizeof why);
    if (c == NULL) {
        snprintf(err, errlen, "sentinel %s:%d: %s", s->host, s->port, why);
        return -EIO;
    }
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", t->master);
    int rc = 0;
    if (r == NULL) {
        snprintf(err, errlen, "sentinel %s:%d: %s", s->host, s->port, c->errstr);
        rc = -EIO;
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "sentinel %s:%d does not monitor a master named \"%s\"", s->host,
                 s->port, t->master);
        rc = -ENOENT;
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "sentinel %s:%d: %s", s->host, s->port, r->str);
        rc = -EPROTO;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING || (size_t)r->element[0]->len >= hostlen) {
        snprintf(err, errlen, "sentinel %s:%d: unexpected reply to get-master-addr-by-name",
                 s->host, s->port);
        rc = -EPROTO;
    } else {
        char *end;
        long p = strtol(r->element[1]->str, &end, 10);
        if (*end || p <= 0 || p > 65535) {
            snprintf(err, errlen, "sentinel %s:%d: bad port \"%s\"", s->host, s->port,
                     r->element[1]->str);
            rc = -EPROTO;
        } else {
            memcpy(host, r->element[0]->str, (size_t)r->element[0]->len + 1);
            *port = (int)p;
        }
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* 0 when ROLE says master; -EAGAIN (a replica, or a sentinel's view that
 * is behind) or -EIO otherwise. */
static int check_master(redisContext *c, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "ROLE");
    int rc = 0;
    if (r == NULL) {
        snprintf(err, errlen, "ROLE: %s", c->errstr);
        return -EIO;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0) {
        snprintf(err, errlen, "ROLE is %s, not master",
                 r->type == REDIS_REPLY_ARRAY && r->elements && r->element[0]->str
                     ? r->element[0]->str
                     : "unreadable");
        rc = -EAGAIN;
    }
    freeReplyObject(r);
    return rc;
}

static redisContext *connect_primary(const vtn_redis_target *t, int timeout_ms, char *err,
                                     size_t errlen)
{
    size_t used = 0;
    err[0] = '\0';
    /* The primaries tried in this call: sentinels that have not seen the failover yet all
     * name the same dead one, and each attempt may cost the whole timeout. */
    char tried[VTN_REDIS_SENTINELS_MAX][264];
    int ntried = 0;
    for (int i = 0; i < t->nsentinels; i++) {
        char host[256], why[800], addr[264];
        int port;
        int rc =
            vtn_redis_sentinel_ask(t, &t->sentinel[i], host, sizeof host, &port, why, sizeof why);
        if (rc == 0) {
            snprintf(addr, sizeof addr, "%s:%d", host, port);
            int seen = 0;
            for (int k = 0; k < ntried; k++)
                seen |= strcmp(tried[k], addr) == 0;
            if (seen) {
                snprintf(why, sizeof why, "sentinel %s:%d names %s too", t->sentinel[i].host,
                         t->sentinel[i].port, addr);
            } else {
                strcpy(tried[ntried++], addr);
                char w2[200];
                redisContext *c = open_tcp(host, port, timeout_ms, t->password, w2, sizeof w2);
                if (c && check_master(c, w2, sizeof w2) < 0) {
                    redisFree(c);
                    c = NULL;
                }
                if (c)
                    return c;
                snprintf(why, sizeof why, "primary %s named by sentinel %s:%d: %s", addr,
                         t->sentinel[i].host, t->sentinel[i].port, w2);
            }
        }
        /* Every sentinel's answer, so the log says why none led to a primary. */
        if (used < errlen) {
            int n = snprintf(err + used, errlen - used, "%s%s", used ? "; " : "", why);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    return NULL;
}

redisContext *vtn_redis_connect(const vtn_redis_target *t, int timeout_ms, char *err, size_t errlen)
{
    redisContext *c;
    if (t->nsentinels > 0) {
        c = connect_primary(t, timeout_ms, err, errlen);
        if (c == NULL)
            return NULL;
    } else if (t->unix_path[0]) {
        struct timeval tv = ms_tv(timeout_ms);
        c = redisConnectUnixWithTimeout(t->unix_path, tv);
        if (c == NULL) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        if (c->err) {
            snprintf(err, errlen, "connect %s: %s", t->unix_path, c->errstr);
            redisFree(c);
            return NULL;
        }
        redisSetTimeout(c, tv);
        if (t->password[0] && command_ok(c, "AUTH", err, errlen, "AUTH %s", t->password) < 0) {
            redisFree(c);
            return NULL;
        }
    } else {
        c = open_tcp(t->host, t->port, timeout_ms, t->password, err, errlen);
        if (c == NULL)
            return NULL;
    }
    if (t->db && command_ok(c, "SELECT", err, errlen, "SELECT %d", t->db) < 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

const char *vtn_redis_where(const redisContext *c, char *out, size_t outlen)
{
    if (c == NULL)
        snprintf(out, outlen, "-");
    else if (c->connection_type == REDIS_CONN_UNIX)
        snprintf(out, outlen, "%s", c->unix_sock.path ? c->unix_sock.path : "?");
    else
        snprintf(out, outlen, "%s:%d", c->tcp.host ? c->tcp.host : "?", c->tcp.port);
    return out;
}

int vtn_redis_is_readonly(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "READONLY", 8) == 0;
}

/* ---- +switch-master ---- */

#define WATCH_BACKOFF_MIN_MS 500
#define WATCH_BACKOFF_MAX_MS 10000

struct vtn_redis_watch {
    vtn_redis_target t;
    redisContext *c;    /* subscribed, or NULL */
    int next;           /* the sentinel to try next */
    long long retry_ms; /* when to try again while c is NULL */
    int backoff_ms;
};

vtn_redis_watch *vtn_redis_watch_new(const vtn_redis_target *t)
{
    if (t->nsentinels == 0)
        return NULL;
    vtn_redis_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->t = *t;
    w->backoff_ms = WATCH_BACKOFF_MIN_MS;
    return w;
}

static void watch_drop(vtn_redis_watch *w, long long now_ms, const char *why)
{
    if (w->c) {
        char q[300];
        vtn_warn("sentinel_watch_lost", "sentinel=%s:%d err=%s", w->t.sentinel[w->next].host,
                 w->t.sentinel[w->next].port, vtn_log_quote(q, sizeof q, why, strlen(why)));
        redisFree(w->c);
        w->c = NULL;
        w->next = (w->next + 1) % w->t.nsentinels; /* another sentinel next time */
    }
    w->retry_ms = now_ms + w->backoff_ms;
    w->backoff_ms =
        w->backoff_ms * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : w->backoff_ms * 2;
}

/* Subscribes on one sentinel: the first of the list, from w->next, that answers. */
static void watch_open(vtn_redis_watch *w, long long now_ms)
{
    for (int k = 0; k < w->t.nsentinels; k++) {
        int i = (w->next + k) % w->t.nsentinels;
        char why[512]; /* a host (255) and hiredis' errstr (128) fit */
        redisContext *c =
            open_tcp(w->t.sentinel[i].host, w->t.sentinel[i].port, VTN_REDIS_SENTINEL_TIMEOUT_MS,
                     w->t.sentinel_password, why, sizeof why);
        if (c == NULL)
            continue;
        redisReply *r = redisCommand(c, "SUBSCRIBE +switch-master");
        int ok = r && r->type == REDIS_REPLY_ARRAY;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            continue;
        }
        redisEnableKeepAlive(c); /* an idle subscription must not be dropped silently */
        w->c = c;
        w->next = i;
        w->backoff_ms = WATCH_BACKOFF_MIN_MS;
        vtn_info("sentinel_watch", "sentinel=%s:%d channel=+switch-master master=%s",
                 w->t.sentinel[i].host, w->t.sentinel[i].port, w->t.master);
        return;
    }
    watch_drop(w, now_ms, "no sentinel answers");
}

int vtn_redis_watch_fd(vtn_redis_watch *w, long long now_ms)
{
    if (w == NULL)
        return -1;
    if (w->c == NULL && now_ms >= w->retry_ms)
        watch_open(w, now_ms);
    return w->c ? w->c->fd : -1;
}

/* "+switch-master <master> <old ip> <old port> <new ip> <new port>": ours? */
static int names_master(const redisReply *msg, const char *master)
{
    if (msg->type != REDIS_REPLY_ARRAY || msg->elements != 3 ||
        msg->element[0]->type != REDIS_REPLY_STRING || strcmp(msg->element[0]->str, "message") ||
        msg->element[2]->type != REDIS_REPLY_STRING)
        return 0;
    size_t n = strlen(master);
    const char *p = msg->element[2]->str;
    return strncmp(p, master, n) == 0 && p[n] == ' ';
}

int vtn_redis_watch_read(vtn_redis_watch *w, long long now_ms)
{
    if (w == NULL || w->c == NULL)
        return 0;
    struct pollfd pfd = {.fd = w->c->fd, .events = POLLIN};
    /* Only when something is there: a blocking read must not stall the caller's loop. What
     * the reader holds already (it came with the SUBSCRIBE answer) is looked at anyway. */
    if (poll(&pfd, 1, 0) > 0 && redisBufferRead(w->c) != REDIS_OK) {
        /* The sentinel went away, not necessarily the primary: the connection stays. */
        watch_drop(w, now_ms, w->c->errstr[0] ? w->c->errstr : "closed");
        return 0;
    }
    int switched = 0;
    for (;;) {
        void *rep = NULL;
        if (redisGetReplyFromReader(w->c, &rep) != REDIS_OK) {
            watch_drop(w, now_ms, "unreadable message");
            return switched;
        }
        if (rep == NULL)
            break;
        if (names_master(rep, w->t.master)) {
            const redisReply *m = rep;
            char q[300];
            vtn_warn("sentinel_switch", "msg=%s",
                     vtn_log_quote(q, sizeof q, m->element[2]->str, (size_t)m->element[2]->len));
            switched = 1;
        }
        freeReplyObject(rep);
    }
    return switched;
}

void vtn_redis_watch_free(vtn_redis_watch **pw)
{
    vtn_redis_watch *w = *pw;
    if (w == NULL)
        return;
    if (w->c)
        redisFree(w->c);
    free(w);
    *pw = NULL;
}
