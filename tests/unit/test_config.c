/* The config table: defaults, environment, flags, bounds, and the errors an
 * operator sees for a bad value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/buf.h"
#include "vtn/config.h"
#include "vtn/net.h"
#include "vtn/redis.h"

struct cfg {
    char *listen;
    long long body;
    long long timeout;
    long long workers;
    int open;
    char *token;
};

static const vtn_cfg_item items[] = {
    {"VTN_T_LISTEN", "--listen", VTN_CFG_ADDR, offsetof(struct cfg, listen), "127.0.0.1:8080", 0, 0,
     "listener"},
    {"VTN_T_BODY", NULL, VTN_CFG_SIZE, offsetof(struct cfg, body), "4MiB", 1024, 64LL << 20,
     "body cap"},
    {"VTN_T_TIMEOUT", "--timeout", VTN_CFG_MS, offsetof(struct cfg, timeout), "10s", 1, 3600000,
     "timeout"},
    {"VTN_T_WORKERS", NULL, VTN_CFG_INT, offsetof(struct cfg, workers), "2", 1, 64, "workers"},
    {"VTN_T_OPEN", NULL, VTN_CFG_BOOL, offsetof(struct cfg, open), "true", 0, 0, "open"},
    {"VTN_T_TOKEN", NULL, VTN_CFG_SECRET, offsetof(struct cfg, token), "", 0, 0, "token"},
};
#define NITEMS (sizeof items / sizeof items[0])

static void clear_env(void)
{
    for (size_t i = 0; i < NITEMS; i++)
        unsetenv(items[i].env);
}

static int load(struct cfg *c, int argc, char **argv, char *err)
{
    memset(c, 0, sizeof *c);
    return vtn_config_load(items, NITEMS, c, argc, argv, "t", "test", err, 256);
}

static void defaults_apply(void **state)
{
    (void)state;
    clear_env();
    struct cfg c;
    char err[256] = "";
    char *argv[] = {"t"};
    assert_int_equal(load(&c, 1, argv, err), 0);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_true(c.body == 4LL << 20);
    assert_true(c.timeout == 10000);
    assert_true(c.workers == 2);
    assert_int_equal(c.open, 1);
    assert_string_equal(c.token, "");
    vtn_config_free(items, NITEMS, &c);
    assert_null(c.listen);
}

static void env_then_flags_override(void **state)
{
    (void)state;
    clear_env();
    setenv("VTN_T_LISTEN", "[::1]:9000", 1);
    setenv("VTN_T_TIMEOUT", "250ms", 1);
    setenv("VTN_T_OPEN", "no", 1);
    struct cfg c;
    char err[256] = "";
    char *argv[] = {"t", "--timeout", "2m", "--listen=127.0.0.1:1"};
    assert_int_equal(load(&c, 4, argv, err), 0);
    assert_string_equal(c.listen, "127.0.0.1:1");
    assert_true(c.timeout == 120000);
    assert_int_equal(c.open, 0);
    vtn_config_free(items, NITEMS, &c);
    clear_env();
}

static void bad_values_name_the_variable(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    char *argv[] = {"t"};

    clear_env();
    setenv("VTN_T_WORKERS", "100", 1);
    assert_int_equal(load(&c, 1, argv, err), -EINVAL);
    assert_non_null(strstr(err, "VTN_T_WORKERS"));
    assert_non_null(strstr(err, "out of range [1, 64]"));
    vtn_config_free(items, NITEMS, &c);

    clear_env();
    setenv("VTN_T_BODY", "lots", 1);
    assert_int_equal(load(&c, 1, argv, err), -EINVAL);
    assert_non_null(strstr(err, "VTN_T_BODY"));
    vtn_config_free(items, NITEMS, &c);

    clear_env();
    setenv("VTN_T_LISTEN", "nowhere", 1);
    assert_int_equal(load(&c, 1, argv, err), -EINVAL);
    assert_non_null(strstr(err, "host:port"));
    vtn_config_free(items, NITEMS, &c);

    clear_env();
    char *bad_flag[] = {"t", "--nope"};
    assert_int_equal(load(&c, 2, bad_flag, err), -EINVAL);
    assert_non_null(strstr(err, "--nope"));
    vtn_config_free(items, NITEMS, &c);

    char *no_value[] = {"t", "--timeout"};
    assert_int_equal(load(&c, 2, no_value, err), -EINVAL);
    vtn_config_free(items, NITEMS, &c);
}

/* A boolean flag may stand alone, or take a value after it or after '='. */
static void boolean_flags_stand_alone(void **state)
{
    (void)state;
    static const vtn_cfg_item flags[] = {
        {"VTN_T_JSON", "--json", VTN_CFG_BOOL, offsetof(struct cfg, open), "false", 0, 0, "json"},
        {"VTN_T_TIMEOUT", "--timeout", VTN_CFG_MS, offsetof(struct cfg, timeout), "10s", 1, 3600000,
         "timeout"},
    };
    unsetenv("VTN_T_JSON");
    unsetenv("VTN_T_TIMEOUT");
    struct cfg c;
    char err[256] = "";
    char *alone[] = {"t", "--json"};
    memset(&c, 0, sizeof c);
    assert_int_equal(vtn_config_load(flags, 2, &c, 2, alone, "t", "test", err, sizeof err), 0);
    assert_int_equal(c.open, 1);
    char *before_other[] = {"t", "--json", "--timeout", "2s"};
    memset(&c, 0, sizeof c);
    assert_int_equal(vtn_config_load(flags, 2, &c, 4, before_other, "t", "test", err, sizeof err),
                     0);
    assert_int_equal(c.open, 1);
    assert_int_equal(c.timeout, 2000);
    char *with_value[] = {"t", "--json", "false"};
    c.open = 1;
    assert_int_equal(vtn_config_load(flags, 2, &c, 3, with_value, "t", "test", err, sizeof err), 0);
    assert_int_equal(c.open, 0);
    /* Only booleans: a number flag still needs its value. */
    char *no_value[] = {"t", "--timeout"};
    assert_int_equal(vtn_config_load(flags, 2, &c, 2, no_value, "t", "test", err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "--timeout needs a value");
}

/* The start-up helper: run on, or the exit status after --help or a bad setting. */
static void start_gives_the_exit_status(void **state)
{
    (void)state;
    clear_env();
    struct cfg c;
    memset(&c, 0, sizeof c);
    char *ok[] = {"t", "--timeout", "5s"};
    assert_int_equal(vtn_config_start(items, NITEMS, &c, 3, ok, "t", "test"), -1);
    assert_int_equal(c.timeout, 5000);
    vtn_config_free(items, NITEMS, &c);
    char *bad[] = {"t", "--timeout", "5 parsecs"};
    memset(&c, 0, sizeof c);
    assert_int_equal(vtn_config_start(items, NITEMS, &c, 3, bad, "t", "test"), 2);
    assert_null(c.listen); /* freed for the exit */
}

static void parsers(void **state)
{
    (void)state;
    long long v;
    assert_int_equal(vtn_parse_size("64k", &v), 0);
    assert_true(v == 65536);
    assert_int_equal(vtn_parse_size("4MiB", &v), 0);
    assert_true(v == 4194304);
    assert_int_equal(vtn_parse_size("-1", &v), -EINVAL);
    assert_int_equal(vtn_parse_size("12parsecs", &v), -EINVAL);
    assert_int_equal(vtn_parse_size("99999999999999999999", &v), -EINVAL);
    assert_int_equal(vtn_parse_ms("1h", &v), 0);
    assert_true(v == 3600000);
    assert_int_equal(vtn_parse_ms("1500", &v), 0);
    assert_true(v == 1500);
    assert_int_equal(vtn_parse_ms("", &v), -EINVAL);
    int b;
    assert_int_equal(vtn_parse_bool("ON", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(vtn_parse_bool("maybe", &b), -EINVAL);
}

static void addresses_and_redis_urls(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char out[64];
    assert_int_equal(vtn_addr_parse("127.0.0.1:0", &ss), 0);
    assert_int_equal(vtn_addr_parse("[::1]:8080", &ss), 0);
    assert_string_equal(vtn_addr_format((struct sockaddr *)&ss, out, sizeof out), "[::1]:8080");
    assert_int_equal(vtn_addr_parse("localhost:80", &ss), 0);
    assert_string_equal(vtn_addr_format((struct sockaddr *)&ss, out, sizeof out), "127.0.0.1:80");
    assert_int_equal(vtn_addr_parse("127.0.0.1:65536", &ss), -EINVAL);
    assert_int_equal(vtn_addr_parse("::1:80", &ss), -EINVAL);

    vtn_redis_target t;
    assert_int_equal(vtn_redis_url_parse("redis://127.0.0.1:6400/2", &t), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 6400);
    assert_int_equal(t.db, 2);
    assert_int_equal(vtn_redis_url_parse("redis://:s3cret@redis.example:6379", &t), 0);
    assert_string_equal(t.password, "s3cret");
    assert_string_equal(t.host, "redis.example");
    assert_int_equal(vtn_redis_url_parse("redis+unix:///run/redis.sock?db=1", &t), 0);
    assert_string_equal(t.unix_path, "/run/redis.sock");
    assert_int_equal(t.db, 1);
    assert_int_equal(vtn_redis_url_parse("http://x", &t), -EINVAL);
    assert_int_equal(vtn_redis_url_parse("redis://h:0", &t), -EINVAL);
    assert_int_equal(vtn_redis_url_parse("redis://h/99", &t), -EINVAL);
}

static void comma_lists(void **state)
{
    (void)state;
    const char *list = " a ,b,, c\t,", *item;
    size_t len;
    const char *want[] = {"a", "b", "", "c"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(vtn_cfg_list_next(&list, &item, &len), 1);
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(item, want[i], len);
    }
    assert_int_equal(vtn_cfg_list_next(&list, &item, &len), 0);
    list = NULL;
    assert_int_equal(vtn_cfg_list_next(&list, &item, &len), 0);
}

static void buffer_cap_and_xml_escape(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 16);
    assert_int_equal(vtn_buf_appends(&b, "0123456789"), 0);
    assert_int_equal(vtn_buf_appends(&b, "0123456789"), -ENOBUFS);
    assert_int_equal(b.len, 10);
    vtn_buf_free(&b);
    vtn_buf_init(&b, 64);
    assert_int_equal(vtn_buf_append_xml(&b, "a<b&\"'>", 7), 0);
    assert_string_equal(b.data, "a&lt;b&amp;&quot;&apos;&gt;");
    vtn_buf_free(&b);
    vtn_buf_init(&b, 8);
    assert_int_equal(vtn_buf_append_xml(&b, "<<<<", 4), -ENOBUFS);
    assert_int_equal(b.len, 0);
    vtn_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply),
        cmocka_unit_test(env_then_flags_override),
        cmocka_unit_test(bad_values_name_the_variable),
        cmocka_unit_test(boolean_flags_stand_alone),
        cmocka_unit_test(start_gives_the_exit_status),
        cmocka_unit_test(parsers),
        cmocka_unit_test(addresses_and_redis_urls),
        cmocka_unit_test(comma_lists),
        cmocka_unit_test(buffer_cap_and_xml_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
