/* Redis connection settings shared by every process. The key layout is in
 * vtn/keys.h (docs/redis-keys.md). */
#ifndef VTN_REDIS_H
#define VTN_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "vtn/keys.h" /* the key layout; VTN_KEY_GATEWAYS used to live here */

#define VTN_REDIS_URL_DEFAULT "redis://127.0.0.1:6379/0"

typedef struct vtn_redis_target {
    char host[256];
    int port;
    char unix_path[256]; /* redis+unix:///path/to/sock?db=0 */
    char password[256];
    int db;
} vtn_redis_target;

/* redis://[:password@]host[:port][/db], redis+unix:///path[?db=N]. 0 or -EINVAL. */
int vtn_redis_url_parse(const char *url, vtn_redis_target *out);
/* Connects with a timeout (ms) for connect and each command, AUTHs and
 * SELECTs. Returns a context or NULL with the reason in err. */
redisContext *vtn_redis_connect(const vtn_redis_target *t, int timeout_ms, char *err,
                                size_t errlen);

#endif
