#!/usr/bin/env python3
"""The gateway serving the console's files under /ui/ on the management
listener: types, caching and security headers, no token for the files but
the token for the data, the app's routes, HEAD, 405, redirects, traversal
attempts and huge paths; a gateway without the files says so and serves
the API as before. Needs no npm: it makes its own small build."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import (Api, Checks, Http, Stack, check, eq, http_request_bytes,  # noqa: E402
                     install_signal_handlers, parse_args, parse_responses, raw_exchange)

INDEX = b"<!doctype html><title>openvtn console</title><script type=module src=/ui/assets/app-1a2b3c.js></script>"
JS = b"document.title = 'ok';"
CSS = b"body { color: #111 }"
API_MAX_URL = 2048


def make_build(root):
    os.makedirs(os.path.join(root, "assets"))
    for rel, data in (("index.html", INDEX), ("assets/app-1a2b3c.js", JS), ("assets/app-9f8e.css", CSS),
                      ("favicon.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")):
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    # what must never be served: a link out of the directory, a dot file
    os.symlink("/etc/passwd", os.path.join(root, "passwd.html"))
    with open(os.path.join(root, ".env"), "w") as f:
        f.write("SECRET=1\n")


def main():
    cfg, _ = parse_args(__doc__.split("\n")[0])
    cfg.require("gateway", "worker", "redis_server")
    install_signal_handlers()
    checks = Checks("e2e.ui_serving")
    with checks.processes():
        with Stack(cfg, name="e2e-ui-serving") as st:
            ui = os.path.join(st.tmpdir, "ui")
            make_build(ui)
            gw = st.start_basic(workers=1, gateway_env={"VTN_API_TOKEN": st.api_token, "VTN_UI_DIR": ui,
                                                       "VTN_API_MAX_URL": str(API_MAX_URL)})
            port = gw.ports["api"]

            def one(method, path, body=b"", headers=()):
                data, _ = raw_exchange("127.0.0.1", port, http_request_bytes(method, path, body, list(headers)),
                                       timeout=5.0, read_until_close=False, expect=1)
                resps, _ = parse_responses(data)
                check(resps, "no answer to %s %s" % (method, path[:80]))
                return resps[0]

            def files_without_token():
                r = one("GET", "/ui/")
                eq(r.status, 200, "GET /ui/ without a token")
                eq(r.body, INDEX, "index.html's bytes")
                eq(r.header("Content-Type"), "text/html; charset=utf-8", "index.html's type")
                eq(r.header("Cache-Control"), "no-cache", "index.html is checked on every load")
                csp = r.header("Content-Security-Policy") or ""
                check("default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp,
                      "CSP allows only this origin: %r" % csp)
                eq(r.header("X-Content-Type-Options"), "nosniff", "nosniff")
                r = one("GET", "/ui/assets/app-1a2b3c.js")
                eq((r.status, r.body), (200, JS), "the script")
                eq(r.header("Content-Type"), "text/javascript; charset=utf-8", "the script's type")
                eq(r.header("Cache-Control"), "public, max-age=31536000, immutable", "hashed assets are immutable")
                r = one("GET", "/ui/assets/app-9f8e.css")
                eq(r.header("Content-Type"), "text/css; charset=utf-8", "the style sheet's type")
                r = one("GET", "/ui/favicon.svg")
                eq(r.header("Content-Type"), "image/svg+xml", "svg type")

            def data_needs_token():
                r = one("GET", "/api/v1/vens")
                eq(r.status, 401, "the API without a token")
                r = one("GET", "/uiextra")
                eq(r.status, 401, "a path that only starts like /ui is the API listener's, with its token")
                api = Api("127.0.0.1", port, st.api_token)
                try:
                    eq(api.call("GET", "/api/v1/vens").status, 200, "the API with the token")
                finally:
                    api.close()

            def app_routes_and_redirect():
                for path in ("/ui/vens/ven-1", "/ui/events/evt-1/", "/ui/reports?venID=ven-1", "/ui/health"):
                    r = one("GET", path)
                    eq((r.status, r.body), (200, INDEX), "GET %s draws the app" % path)
                r = one("GET", "/ui")
                eq(r.status, 301, "GET /ui")
                eq(r.header("Location"), "/ui/", "/ui redirects to /ui/")

            def head_and_methods():
                with Http("127.0.0.1", port) as h:  # knows a HEAD answer has no body
                    r = h.request("HEAD", "/ui/assets/app-1a2b3c.js")
                eq(r.status, 200, "HEAD")
                eq(r.header("Content-Length"), str(len(JS)), "HEAD's Content-Length is the file's")
                eq(r.body, b"", "HEAD has no body")
                for m in ("POST", "PUT", "DELETE", "PATCH"):
                    r = one(m, "/ui/", b"x" * 100, [("Content-Type", "text/plain")])
                    eq(r.status, 405, "%s /ui/" % m)
                    eq(r.header("Allow"), "GET, HEAD", "Allow of %s /ui/" % m)
                # refused at the header: the announced body is never waited for
                data, _ = raw_exchange("127.0.0.1", port, http_request_bytes(
                    "POST", "/ui/", b"", [("Content-Type", "text/plain"), ("Content-Length", "500000")]),
                    timeout=5.0, read_until_close=False, expect=1)
                resps, _ = parse_responses(data)
                check(resps and resps[0].status == 405, "POST /ui/ with its body still to come: %r" % data[:200])

            def traversal_and_odd_paths():
                for path in ("/ui/../etc/passwd", "/ui/..", "/ui/%2e%2e/%2e%2e/etc/passwd", "/ui/%2E%2E%2Fetc%2Fpasswd",
                             "/ui/assets/..%2f..%2f..%2fetc%2fpasswd", "/ui/..%5c..%5cetc%5cpasswd",
                             "/ui/./index.html", "/ui//etc/passwd", "/ui/passwd.html", "/ui/.env",
                             "/ui/assets/app-old.js", "/ui/x%00.js", "/ui/%zz"):
                    r = one("GET", path)
                    eq(r.status, 404, "GET %s" % path)
                    check(b"root:" not in r.body and b"SECRET" not in r.body and r.body != INDEX,
                          "GET %s answered content: %r" % (path, r.body[:80]))
                r = one("GET", "/ui/" + "a/" * 600 + "x.js")
                eq(r.status, 404, "a long path under the URL limit")
                r = one("GET", "/ui/" + "a" * (API_MAX_URL + 10))
                eq(r.status, 414, "a path over VTN_API_MAX_URL")

            def not_on_the_openadr_listener():
                data, _ = raw_exchange("127.0.0.1", gw.ports["oadr"], http_request_bytes("GET", "/ui/"),
                                       timeout=5.0, read_until_close=False, expect=1)
                eq(parse_responses(data)[0][0].status, 404, "/ui/ on the OpenADR listener")

            def gateway_without_console():
                g2 = st.start_gateway(env={"VTN_API_TOKEN": st.api_token,
                                           "VTN_UI_DIR": os.path.join(st.tmpdir, "no-such-dir")}, wait=False)
                check("the console is not available" in g2.log_text(),
                      "the gateway does not say the console is missing: %s" % g2.log_text()[-800:])
                data, _ = raw_exchange("127.0.0.1", g2.ports["api"], http_request_bytes("GET", "/ui/"),
                                       timeout=5.0, read_until_close=False, expect=1)
                r = parse_responses(data)[0][0]
                eq(r.status, 404, "/ui/ without a console")
                check(b"not installed" in r.body, "404 body says why: %r" % r.body)
                check("ui" in gw.log_text() and "url=http://127.0.0.1:%d/ui/" % port in gw.log_text(),
                      "the first gateway logs the console's URL")

            checks.run("files_without_token", files_without_token)
            checks.run("data_needs_token", data_needs_token)
            checks.run("app_routes_and_redirect", app_routes_and_redirect)
            checks.run("head_and_methods", head_and_methods)
            checks.run("traversal_and_odd_paths", traversal_and_odd_paths)
            checks.run("not_on_the_openadr_listener", not_on_the_openadr_listener)
            checks.run("gateway_without_console", gateway_without_console)
            checks.keep_logs_on_failure(st)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
