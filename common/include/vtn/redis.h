/* Redis connection settings shared by every process: one Redis named by a
 * URL, or the primary of a Sentinel-monitored group, asked of the sentinels
 * on every connect (docs/deploy.md "Redis failover"). The key layout is in
 * vtn/keys.h (docs/redis-keys.md). */
#ifndef VTN_REDIS_H
#define VTN_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "vtn/keys.h" /* the key layout; VTN_KEY_GATEWAYS used to live here */

#define VTN_REDIS_URL_DEFAULT "redis://127.0.0.1:6379/0"
#define VTN_REDIS_SENTINEL_PORT 26379
#define VTN_REDIS_SENTINELS_MAX 8
/* Connect and reply timeout of one question to one sentinel: a dead
 * sentinel must cost little, the next one is asked. */
#define VTN_REDIS_SENTINEL_TIMEOUT_MS 500

typedef struct vtn_redis_sentinel {
    char host[256];
    int port;
} vtn_redis_sentinel;

typedef struct vtn_redis_target {
    char host[256];
    int port;
    char unix_path[256]; /* redis+unix:///path/to/sock?db=0 */
    char password[256];
    int db;
    /* Sentinel mode when nsentinels > 0: host, port and unix_path are not
     * used; every connect asks the sentinels for the primary of master.
     * password and db still apply to the primary. */
    int nsentinels;
    vtn_redis_sentinel sentinel[VTN_REDIS_SENTINELS_MAX];
    char master[128];
    char sentinel_password[256];
} vtn_redis_target;

/* The three settings of Sentinel mode, the same in every process's config
 * table; T is the config struct, with char * fields redis_sentinels,
 * redis_sentinel_master and redis_sentinel_password. */
/* clang-format off */
#define VTN_REDIS_SENTINEL_CFG_ITEMS(T)                                                            \
    {"VTN_REDIS_SENTINELS", "--redis-sentinels", VTN_CFG_STR, offsetof(T, redis_sentinels), "",   \
     0, 0,                                                                                         \
     "Redis Sentinels, host:port[,host:port...] (port 26379 when left out): set = ask them for "   \
     "the primary of VTN_REDIS_SENTINEL_MASTER on every connect and follow its failovers; "        \
     "VTN_REDIS_URL then gives only the password and db"},                                         \
    {"VTN_REDIS_SENTINEL_MASTER", "--redis-sentinel-master", VTN_CFG_STR,                          \
     offsetof(T, redis_sentinel_master), "", 0, 0,                                                 \
     "the master name the sentinels monitor (needed with VTN_REDIS_SENTINELS)"},                   \
    {"VTN_REDIS_SENTINEL_PASSWORD", "--redis-sentinel-password", VTN_CFG_SECRET,                   \
     offsetof(T, redis_sentinel_password), "", 0, 0,                                              \
     "password of the sentinels (their requirepass); empty: none"}
/* clang-format on */

/* redis://[:password@]host[:port][/db], redis+unix:///path[?db=N]. 0 or -EINVAL. */
int vtn_redis_url_parse(const char *url, vtn_redis_target *out);
/* "host:port[,host:port...]" into out->sentinel ("[v6]:port"; port 26379
 * when left out; at most VTN_REDIS_SENTINELS_MAX). 0 or -EINVAL. */
int vtn_redis_sentinels_parse(const char *list, vtn_redis_target *out);
/* The whole Redis setting of a process, checked: without sentinels the URL
 * is the server; with them (a master name then required) the URL, which
 * may be empty, gives only password and db, and must not be redis+unix.
 * 0, or -EINVAL with a message naming the variable in err. */
int vtn_redis_target_init(vtn_redis_target *t, const char *url, const char *sentinels,
                          const char *master, const char *sentinel_password, char *err,
                          size_t errlen);
/* Connects with a timeout (ms) for connect and each command, AUTHs and
 * SELECTs. In Sentinel mode, asks the sentinels in turn for the primary
 * and checks with ROLE that it is one (a sentinel that has not seen the
 * failover yet names a replica: the next sentinel is asked). Returns a
 * context or NULL with the reason in err. c->tcp.host/port say where. */
redisContext *vtn_redis_connect(const vtn_redis_target *t, int timeout_ms, char *err,
                                size_t errlen);
/* Where c is connected, "host:port" or the socket path, for logs. */
const char *vtn_redis_where(const redisContext *c, char *out, size_t outlen);
/* Asks one sentinel for the address of master. 0, or -EIO (no answer),
 * -ENOENT (it does not know master), -EPROTO, with the reason in err. */
int vtn_redis_sentinel_ask(const vtn_redis_target *t, const vtn_redis_sentinel *s, char *host,
                           size_t hostlen, int *port, char *err, size_t errlen);
/* True for a "-READONLY" reply: the server is a replica now (a failover
 * demoted it); the caller drops the connection and connects again. */
int vtn_redis_is_readonly(const redisReply *r);

/* A subscription to the sentinels' +switch-master channel, for a process
 * whose loop can poll one more descriptor: it learns of a failover the
 * moment a sentinel announces it instead of at its next error. */
typedef struct vtn_redis_watch vtn_redis_watch;
/* NULL without sentinels. The subscription itself is made by
 * vtn_redis_watch_fd when due. Freed with vtn_redis_watch_free. */
vtn_redis_watch *vtn_redis_watch_new(const vtn_redis_target *t);
/* The descriptor to poll for reading, or -1 (none, or no sentinel answers:
 * tried again after a back-off, so calling this every loop turn is cheap). */
int vtn_redis_watch_fd(vtn_redis_watch *w, long long now_ms);
/* Reads what the descriptor has. 1 when the sentinels announced a new
 * primary for the target's master (the caller reconnects), 0 otherwise. */
int vtn_redis_watch_read(vtn_redis_watch *w, long long now_ms);
void vtn_redis_watch_free(vtn_redis_watch **w);

#endif
