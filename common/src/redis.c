#include "vtn/redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

redisContext *vtn_redis_connect(const vtn_redis_target *t, int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = t->unix_path[0] ? redisConnectUnixWithTimeout(t->unix_path, tv)
                                      : redisConnectWithTimeout(t->host, t->port, tv);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "connect %s:%d: %s", t->unix_path[0] ? t->unix_path : t->host,
                 t->port, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (t->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", t->password);
        int ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok)
            snprintf(err, errlen, "AUTH failed: %s", r ? r->str : c->errstr);
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    if (t->db) {
        redisReply *r = redisCommand(c, "SELECT %d", t->db);
        int ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok)
            snprintf(err, errlen, "SELECT %d failed: %s", t->db, r ? r->str : c->errstr);
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}
