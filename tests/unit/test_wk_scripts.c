/* The worker's scripts: every WK_SCRIPT_* names an embedded common/lua file,
 * and the constants line the loader puts in front carries the data model's
 * values (vtn/keys.h) as Lua, on one line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/scripts.h"
#include "wk_internal.h"

static void every_script_is_embedded(void **state)
{
    (void)state;
    for (int i = 0; i < WK_SCRIPT__COUNT; i++) {
        const vtn_script_file *f = vtn_script_find(wk_script_name[i]);
        assert_non_null(f);
        assert_true(f->len > 0);
    }
    assert_non_null(vtn_script_find("leader_acquire"));
    assert_non_null(vtn_script_find("leader_release"));
    assert_null(vtn_script_find("po"));   /* a prefix is not a name */
    assert_null(vtn_script_find("pop.")); /* nor is the file name without "lua" */
}

static void prelude_carries_the_constants(void **state)
{
    (void)state;
    char p[4096];
    int n = vtn_script_prelude(p, sizeof p);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(p));
    assert_non_null(strstr(p, "local QUEUE_MAX = 64;"));
    assert_non_null(strstr(p, "local MEMO_TTL_S = 300;"));
    assert_non_null(strstr(p, "local F_VEN_NAME = \"n\";"));
    assert_non_null(strstr(p, "local KIND_REREG = 'R';"));
    assert_non_null(strstr(p, "local SEP = '|';"));
    assert_non_null(strstr(p, "local function push_mark(vk)")); /* the helpers, same line */
    assert_ptr_equal(strchr(p, '\n'), p + n - 1); /* one line: file lines shift by one */
    assert_int_equal(vtn_script_prelude(p, 40), -ENOSPC);
}

/* Redis 7 reads a shebang only on line 1: the loader keeps it there and
 * puts the constants after it; a file without one starts with them. */
static void shebang_stays_first(void **state)
{
    (void)state;
    char p[4096];
    int np = vtn_script_prelude(p, sizeof p);
    assert_true(np > 0);
    static const char body[] = "#!lua flags=allow-oom\nreturn QUEUE_MAX\n";
    vtn_script_file f = {"t.lua", (const unsigned char *)body, sizeof body - 1};
    char *src = NULL;
    size_t len = 0;
    assert_int_equal(vtn_script_source(&f, &src, &len), 0);
    assert_int_equal(len, sizeof body - 1 + (size_t)np);
    assert_memory_equal(src, "#!lua flags=allow-oom\n", 22);
    assert_memory_equal(src + 22, p, (size_t)np);
    assert_memory_equal(src + 22 + np, "return QUEUE_MAX\n", 17);
    free(src);

    static const char plain[] = "return SEP\n";
    f = (vtn_script_file){"u.lua", (const unsigned char *)plain, sizeof plain - 1};
    assert_int_equal(vtn_script_source(&f, &src, &len), 0);
    assert_memory_equal(src, p, (size_t)np);
    assert_memory_equal(src + np, plain, sizeof plain - 1);
    free(src);

    /* The API delete frees memory: it must run while Redis is full. */
    const vtn_script_file *del = vtn_script_find("apidelete");
    assert_non_null(del);
    assert_true(del->len > 22 && memcmp(del->src, "#!lua flags=allow-oom\n", 22) == 0);
}

static void noscript_is_recognised(void **state)
{
    (void)state;
    redisReply r = {.type = REDIS_REPLY_ERROR, .str = "NOSCRIPT No matching script.", .len = 28};
    assert_true(vtn_script_is_noscript(&r));
    r.str = "ERR something else";
    r.len = 18;
    assert_false(vtn_script_is_noscript(&r));
    assert_false(vtn_script_is_noscript(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_script_is_embedded),
        cmocka_unit_test(prelude_carries_the_constants),
        cmocka_unit_test(shebang_stays_first),
        cmocka_unit_test(noscript_is_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
