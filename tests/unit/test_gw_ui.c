/* The console's static files (gateway/ui.c): what is loaded from a
 * directory, and the answer to each path and method, including traversal
 * attempts, from memory only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_internal.h"

static char dir[256];

static void put(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void sub(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    assert_int_equal(mkdir(p, 0700), 0);
}

/* A build as Vite writes it, plus what must never be served. */
static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_gw_ui.XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    put("index.html", "<!doctype html><title>console</title>");
    sub("assets");
    put("assets/index-3f9a.js", "console.log(1)");
    put("assets/index-77aa.css", "body{}");
    put("favicon.ico", "ICO");
    put(".secret", "dot file");
    char p[512];
    snprintf(p, sizeof p, "%s/passwd.txt", dir);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static gw_ui ui;

static void ask(int method, const char *path, gw_ui_answer *a)
{
    gw_ui_answer_for(&ui, method, path, strlen(path), a);
}

static const char *body(const gw_ui_answer *a)
{
    static char b[256];
    assert_non_null(a->file);
    snprintf(b, sizeof b, "%.*s", (int)a->file->len, a->file->data);
    return b;
}

static void loads_plain_files_only(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(gw_ui_load(&ui, dir, 1 << 20, err, sizeof err), 0);
    assert_int_equal(ui.n, 4); /* no dot file, no symbolic link */
    assert_non_null(ui.index);
    for (size_t i = 0; i < ui.n; i++) {
        assert_string_not_equal(ui.files[i].path, ".secret");
        assert_string_not_equal(ui.files[i].path, "passwd.txt");
    }
}

static void serves_files_with_type_and_caching(void **state)
{
    (void)state;
    gw_ui_answer a;
    ask(HTTP_GET, "/ui/", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.ctype, "text/html; charset=utf-8");
    assert_string_equal(body(&a), "<!doctype html><title>console</title>");
    assert_non_null(strstr(a.extra, "Cache-Control: no-cache\r\n"));
    assert_non_null(
        strstr(a.extra, "Content-Security-Policy: default-src 'self'; script-src 'self'"));
    assert_non_null(strstr(a.extra, "X-Content-Type-Options: nosniff\r\n"));

    ask(HTTP_GET, "/ui/assets/index-3f9a.js?v=1", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.ctype, "text/javascript; charset=utf-8");
    assert_string_equal(body(&a), "console.log(1)");
    assert_non_null(strstr(a.extra, "Cache-Control: public, max-age=31536000, immutable\r\n"));
    assert_non_null(strstr(a.extra, "Content-Security-Policy: "));

    ask(HTTP_HEAD, "/ui/assets/index-77aa.css", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.ctype, "text/css; charset=utf-8");

    ask(HTTP_GET, "/ui/favicon.ico", &a);
    assert_string_equal(a.ctype, "image/x-icon");
    assert_non_null(strstr(a.extra, "Cache-Control: no-cache\r\n"));
    ask(HTTP_GET, "/ui/index.html", &a);
    assert_string_equal(body(&a), "<!doctype html><title>console</title>");
}

static void client_routes_get_the_page(void **state)
{
    (void)state;
    const char *routes[] = {"/ui/vens/ven-1", "/ui/events/evt-9/", "/ui/health", "/ui/vens/a%20b",
                            "/ui/reports?venID=ven-1"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        gw_ui_answer a;
        ask(HTTP_GET, routes[i], &a);
        assert_int_equal(a.status, 200);
        assert_ptr_equal(a.file, ui.index);
    }
}

static void missing_files_and_traversal_are_404(void **state)
{
    (void)state;
    const char *bad[] = {
        "/ui/assets/index-old.js", /* a stale asset: never the page in its place */
        "/ui/missing.png",
        "/ui/assets/anything",
        "/ui/../etc/passwd",
        "/ui/./index.html",
        "/ui/assets/../index.html",
        "/ui/%2e%2e/%2e%2e/etc/passwd",
        "/ui/%2E%2E/etc/passwd",
        "/ui/.%2e/x",
        "/ui/..",
        "/ui//etc/passwd",
        "/ui/assets%2f..%2f..%2fetc%2fpasswd",
        "/ui/..%5c..%5cetc",
        "/ui/a\\..\\b",
        "/ui/x%00.js",
        "/ui/%zz",
        "/ui/%2",
        "/ui/.secret",
        "/ui/passwd.txt",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_ui_answer a;
        ask(HTTP_GET, bad[i], &a);
        if (a.status != 404)
            fail_msg("%s: %d", bad[i], a.status);
        assert_null(a.file);
    }
    /* longer than any name: 404, no overflow */
    size_t n = GW_UI_PATH_MAX * 4;
    char *huge = malloc(n + 1);
    assert_non_null(huge);
    memcpy(huge, "/ui/", 4);
    memset(huge + 4, 'a', n - 4);
    huge[n] = '\0';
    gw_ui_answer a;
    ask(HTTP_GET, huge, &a);
    assert_int_equal(a.status, 404);
    free(huge);
}

static void methods_and_redirect(void **state)
{
    (void)state;
    gw_ui_answer a;
    const int m[] = {HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_OPTIONS, HTTP_PATCH};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        ask(m[i], "/ui/", &a);
        assert_int_equal(a.status, 405);
        assert_string_equal(a.extra, "Allow: GET, HEAD\r\n");
    }
    ask(HTTP_GET, "/ui", &a);
    assert_int_equal(a.status, 301);
    assert_string_equal(a.extra, "Location: /ui/\r\n");
    ask(HTTP_GET, "/ui?x=1", &a);
    assert_int_equal(a.status, 301);
}

static void routes_ui_on_the_api_listener_only(void **state)
{
    (void)state;
    gw_route_result r;
    gw_route(GW_LISTEN_API, HTTP_GET, "/ui/", 4, "", 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.route, GW_ROUTE_UI);
    assert_string_equal(gw_route_name(r.route), "ui");
    gw_route(GW_LISTEN_API, HTTP_GET, "/ui", 3, "", 0, &r);
    assert_int_equal(r.route, GW_ROUTE_UI);
    gw_route(GW_LISTEN_API, HTTP_GET, "/uix", 4, "", 0, &r);
    assert_int_equal(r.status, 404);
    gw_route(GW_LISTEN_OADR, HTTP_GET, "/ui/", 4, "", 0, &r);
    assert_int_equal(r.status, 404);
}

static void without_a_build_no_console(void **state)
{
    (void)state;
    gw_ui none;
    char err[256] = "";
    char p[300];
    snprintf(p, sizeof p, "%s/assets", dir); /* a directory without index.html */
    assert_int_equal(gw_ui_load(&none, p, 1 << 20, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "no index.html"));
    assert_int_equal(none.n, 0);
    snprintf(p, sizeof p, "%s/nowhere", dir);
    assert_true(gw_ui_load(&none, p, 1 << 20, err, sizeof err) < 0);
    assert_non_null(strstr(err, "nowhere"));
    /* over the size cap: refused as a whole */
    assert_int_equal(gw_ui_load(&none, dir, 16, err, sizeof err), -EFBIG);
    assert_non_null(strstr(err, "VTN_UI_MAX_BYTES"));
    gw_ui_answer a;
    gw_ui_answer_for(&none, HTTP_GET, "/ui/", 4, &a);
    assert_int_equal(a.status, 404);
    assert_non_null(strstr(a.text, "not installed"));
    gw_ui_answer_for(NULL, HTTP_GET, "/ui/x", 5, &a);
    assert_int_equal(a.status, 404);
}

static void content_types(void **state)
{
    (void)state;
    assert_string_equal(gw_ui_content_type("a.svg"), "image/svg+xml");
    assert_string_equal(gw_ui_content_type("x/a.woff2"), "font/woff2");
    assert_string_equal(gw_ui_content_type("a.json"), "application/json");
    assert_string_equal(gw_ui_content_type("LICENSE"), "application/octet-stream");
    assert_string_equal(gw_ui_content_type("a.d/b"), "application/octet-stream");
}

static void frees(void **state)
{
    (void)state;
    gw_ui_free(&ui);
    assert_int_equal(ui.n, 0);
    assert_null(ui.index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_plain_files_only),
        cmocka_unit_test(serves_files_with_type_and_caching),
        cmocka_unit_test(client_routes_get_the_page),
        cmocka_unit_test(missing_files_and_traversal_are_404),
        cmocka_unit_test(methods_and_redirect),
        cmocka_unit_test(routes_ui_on_the_api_listener_only),
        cmocka_unit_test(without_a_build_no_console),
        cmocka_unit_test(content_types),
        cmocka_unit_test(frees),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
