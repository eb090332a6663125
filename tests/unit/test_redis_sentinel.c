/* Sentinel mode of the Redis layer (vtn/redis.h): the settings and their
 * errors, and discovery against fake sentinels and fake data nodes on
 * loopback that answer scripted replies: a dead sentinel is skipped, a
 * sentinel naming a replica (ROLE slave) is not believed, the next one
 * leads to the primary; +switch-master for our master is reported, one for
 * another master is not. (The real thing, redis-server in sentinel mode, is
 * in tests/e2e/test_sentinel_failover.py.) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "vtn/redis.h"
#include "vtn/time.h"

/* ---- a scripted RESP server ---- */

typedef struct fake_rule {
    const char *cmd; /* upper-case command name as sent, e.g. "SENTINEL", "ROLE" */
    char reply[512]; /* raw RESP */
} fake_rule;

typedef struct fake {
    int lfd;
    int port;
    pthread_t th;
    fake_rule rules[4];
    int nrules;
    int commands; /* commands answered (all connections) */
    int conn;     /* the connection being served, for push() */
    volatile int stop;
} fake;

static const char *rule_reply(fake *f, const char *buf, size_t n)
{
    for (int i = 0; i < f->nrules; i++) {
        size_t k = strlen(f->rules[i].cmd);
        /* "*<argc>\r\n$<len>\r\n<CMD>\r\n...": the name follows the second CRLF */
        const char *p = memchr(buf, '\n', n);
        p = p ? memchr(p + 1, '\n', n - (size_t)(p + 1 - buf)) : NULL;
        if (p && (size_t)(buf + n - (p + 1)) >= k && strncasecmp(p + 1, f->rules[i].cmd, k) == 0)
            return f->rules[i].reply;
    }
    return "-ERR unknown command\r\n";
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!f->stop) {
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            break;
        f->conn = c;
        char buf[2048];
        for (;;) {
            struct pollfd p = {.fd = c, .events = POLLIN};
            if (poll(&p, 1, 100) == 0) {
                if (f->stop)
                    break;
                continue;
            }
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            const char *r = rule_reply(f, buf, (size_t)n);
            f->commands++;
            if (send(c, r, strlen(r), MSG_NOSIGNAL) < 0)
                break;
        }
        f->conn = -1;
        close(c);
    }
    return NULL;
}

static void fake_start(fake *f)
{
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    f->conn = -1;
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f)
{
    f->stop = 1;
    shutdown(f->lfd, SHUT_RDWR); /* wakes accept */
    pthread_join(f->th, NULL);
    close(f->lfd);
}

static void rule(fake *f, const char *cmd, const char *fmt, ...)
{
    fake_rule *r = &f->rules[f->nrules++];
    r->cmd = cmd;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reply, sizeof r->reply, fmt, ap);
    va_end(ap);
}

static void master_addr(fake *sentinel, int port)
{
    char p[8];
    snprintf(p, sizeof p, "%d", port);
    rule(sentinel, "SENTINEL", "*2\r\n$9\r\n127.0.0.1\r\n$%zu\r\n%s\r\n", strlen(p), p);
}

/* A port nothing listens on: bound, never listened, closed. */
static int dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

/* ---- tests ---- */

static void settings(void **state)
{
    (void)state;
    vtn_redis_target t;
    char err[512];
    assert_int_equal(vtn_redis_sentinels_parse("s1:26380, s2 ,[::1]:26381", &t), 0);
    assert_int_equal(t.nsentinels, 3);
    assert_string_equal(t.sentinel[0].host, "s1");
    assert_int_equal(t.sentinel[0].port, 26380);
    assert_string_equal(t.sentinel[1].host, "s2");
    assert_int_equal(t.sentinel[1].port, VTN_REDIS_SENTINEL_PORT);
    assert_string_equal(t.sentinel[2].host, "::1");
    assert_int_equal(t.sentinel[2].port, 26381);
    assert_int_equal(vtn_redis_sentinels_parse("s1:0", &t), -EINVAL);
    assert_int_equal(vtn_redis_sentinels_parse("s1:70000", &t), -EINVAL);
    assert_int_equal(vtn_redis_sentinels_parse("s1:26379x", &t), -EINVAL);
    assert_int_equal(vtn_redis_sentinels_parse("s1,,s2", &t), -EINVAL);
    assert_int_equal(vtn_redis_sentinels_parse("::1:26379", &t), -EINVAL);
    assert_int_equal(vtn_redis_sentinels_parse("[::1", &t), -EINVAL);
    assert_int_equal(vtn_redis_sentinels_parse("a,b,c,d,e,f,g,h,i", &t), -EINVAL);

    /* Without sentinels: the URL, as before. */
    assert_int_equal(vtn_redis_target_init(&t, "redis://h:6400/3", "", "", "", err, sizeof err), 0);
    assert_int_equal(t.nsentinels, 0);
    assert_string_equal(t.host, "h");
    assert_int_equal(vtn_redis_target_init(&t, "http://h", "", "", "", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "VTN_REDIS_URL"));
    assert_int_equal(vtn_redis_target_init(&t, "redis://h", "", "m", "", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "VTN_REDIS_SENTINELS is empty"));
    assert_int_equal(vtn_redis_target_init(&t, "redis://h", NULL, NULL, "pw", err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "VTN_REDIS_SENTINEL_PASSWORD"));

    /* With them: the URL gives password and db only; its host is not used. */
    assert_int_equal(vtn_redis_target_init(&t, "redis://:pw@ignored:1/2", "s1,s2:26390", "main",
                                           "spw", err, sizeof err),
                     0);
    assert_int_equal(t.nsentinels, 2);
    assert_string_equal(t.host, "");
    assert_string_equal(t.password, "pw");
    assert_int_equal(t.db, 2);
    assert_string_equal(t.master, "main");
    assert_string_equal(t.sentinel_password, "spw");
    assert_int_equal(vtn_redis_target_init(&t, "", "s1", "main", "", err, sizeof err), 0);
    assert_int_equal(t.db, 0);
    assert_string_equal(t.password, "");
    assert_int_equal(vtn_redis_target_init(&t, "", "s1", "", "", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "VTN_REDIS_SENTINEL_MASTER"));
    assert_int_equal(vtn_redis_target_init(&t, "", "s1", "my master", "", err, sizeof err),
                     -EINVAL);
    assert_int_equal(vtn_redis_target_init(&t, "", "s1:x", "main", "", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "VTN_REDIS_SENTINELS"));
    assert_int_equal(
        vtn_redis_target_init(&t, "redis+unix:///run/r.sock", "s1", "main", "", err, sizeof err),
        -EINVAL);
    assert_non_null(strstr(err, "VTN_REDIS_URL"));
}

static void readonly_answers(void **state)
{
    (void)state;
    redisReply ro = {.type = REDIS_REPLY_ERROR,
                     .str = "READONLY You can't write against a read only replica."};
    redisReply oom = {.type = REDIS_REPLY_ERROR, .str = "OOM command not allowed"};
    redisReply ok = {.type = REDIS_REPLY_STATUS, .str = "READONLY"};
    assert_true(vtn_redis_is_readonly(&ro));
    assert_false(vtn_redis_is_readonly(&oom));
    assert_false(vtn_redis_is_readonly(&ok));
    assert_false(vtn_redis_is_readonly(NULL));
}

/* Sentinel 1 is dead, sentinel 2 names a node that says it is a replica,
 * sentinel 3 names the primary: connect ends on the primary, having asked
 * them in that order. */
static void discovery_skips_what_is_not_the_primary(void **state)
{
    (void)state;
    static fake replica, primary, s2, s3;
    memset(&replica, 0, sizeof replica);
    memset(&primary, 0, sizeof primary);
    memset(&s2, 0, sizeof s2);
    memset(&s3, 0, sizeof s3);
    rule(&replica, "ROLE", "*1\r\n$5\r\nslave\r\n");
    rule(&primary, "ROLE", "*1\r\n$6\r\nmaster\r\n");
    rule(&primary, "PING", "+PONG\r\n");
    rule(&primary, "SELECT", "+OK\r\n");
    fake_start(&replica);
    fake_start(&primary);
    master_addr(&s2, replica.port);
    master_addr(&s3, primary.port);
    fake_start(&s2);
    fake_start(&s3);

    char list[128], err[1024];
    snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", dead_port(), s2.port,
             s3.port);
    vtn_redis_target t;
    assert_int_equal(vtn_redis_target_init(&t, "redis://x/4", list, "main", "", err, sizeof err),
                     0);
    redisContext *c = vtn_redis_connect(&t, 500, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->tcp.port, primary.port);
    char where[64], want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", primary.port);
    assert_string_equal(vtn_redis_where(c, where, sizeof where), want);
    redisReply *r = redisCommand(c, "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(replica.commands, 1); /* ROLE, then dropped */
    assert_int_equal(primary.commands, 3); /* ROLE, SELECT 4, PING */

    /* Only the replica is named, by two sentinels: no connection, the node is tried once,
     * and err says why for each sentinel. */
    snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d", s2.port, s2.port);
    assert_int_equal(vtn_redis_target_init(&t, "", list, "main", "", err, sizeof err), 0);
    assert_null(vtn_redis_connect(&t, 500, err, sizeof err));
    assert_non_null(strstr(err, "not master"));
    assert_non_null(strstr(err, "too"));
    assert_int_equal(replica.commands, 2);

    /* A sentinel that does not know the name: -ENOENT. */
    static fake s4;
    memset(&s4, 0, sizeof s4);
    rule(&s4, "SENTINEL", "*-1\r\n");
    fake_start(&s4);
    char host[64];
    int port = 0;
    assert_int_equal(vtn_redis_sentinel_ask(&t, &(vtn_redis_sentinel){"127.0.0.1", s4.port}, host,
                                            sizeof host, &port, err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "main"));
    fake_stop(&s4);
    fake_stop(&s3);
    fake_stop(&s2);
    fake_stop(&primary);
    fake_stop(&replica);
}

/* The subscription: a message naming our master is a switch, another
 * master's is not. */
static void switch_master_is_ours_only(void **state)
{
    (void)state;
    static fake s;
    memset(&s, 0, sizeof s);
    rule(&s, "SUBSCRIBE",
         "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
         /* pushed right after: another master's failover, then ours */
         "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$39\r\nmainly 127.0.0.1 7001 127.0.0.1 "
         "7002 xx\r\n");
    fake_start(&s);
    char list[64], err[256];
    snprintf(list, sizeof list, "127.0.0.1:%d", s.port);
    vtn_redis_target t;
    assert_int_equal(vtn_redis_target_init(&t, "", list, "main", "", err, sizeof err), 0);
    vtn_redis_watch *w = vtn_redis_watch_new(&t);
    assert_non_null(w);
    long long now = (long long)vtn_now_ms();
    int fd = vtn_redis_watch_fd(w, now);
    assert_true(fd >= 0);
    /* "mainly ..." (it came with the SUBSCRIBE answer) is another master's */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(vtn_redis_watch_read(w, now), 0);
    static const char ours[] = "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$34\r\nmain "
                               "127.0.0.1 7001 127.0.0.1 7002\r\n";
    for (int i = 0; i < 100 && s.conn < 0; i++)
        usleep(10000);
    assert_true(send(s.conn, ours, sizeof ours - 1, MSG_NOSIGNAL) > 0);
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(vtn_redis_watch_read(w, now), 1);
    vtn_redis_watch_free(&w);
    assert_null(w);
    fake_stop(&s);

    /* No sentinels: no watch, no descriptor. */
    assert_int_equal(vtn_redis_target_init(&t, "redis://h", "", "", "", err, sizeof err), 0);
    assert_null(vtn_redis_watch_new(&t));
    assert_int_equal(vtn_redis_watch_fd(NULL, now), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settings),
        cmocka_unit_test(readonly_answers),
        cmocka_unit_test(discovery_skips_what_is_not_the_primary),
        cmocka_unit_test(switch_master_is_ours_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
