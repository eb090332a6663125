#!/usr/bin/env python3
"""The operator console in a real headless Chromium (Debian's chromium and
chromium-driver through python3-selenium) against a real local stack
(Redis, a gateway serving the built console, a worker, the scheduler): a
wrong token refused, log in with the token, pre-provision a VEN, see it
come online as it polls, create a program, a group and an event for the
group, watch participation change as the VEN opts in, draw a report chart,
look at health. A screenshot of each page is kept in --artifacts.
Exits 77 (ctest SKIP) when Chromium, its driver or selenium is absent."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from vtntest import Api, Checks, Stack, Validator, check, eq, install_signal_handlers, parse_args, wait_for  # noqa: E402
from vtntest import oadr  # noqa: E402
from vtntest.poller import PollingVen  # noqa: E402
from vtntest.ven import Ven  # noqa: E402

SKIP = 77
VEN_NAME = "console-ven-1"
MARKET = "http://utility.example/programs/console"
SPEC = "console-telemetry"
RIDS = ["meter-1"]
UI_WAIT = 20.0


def browser_parts():
    """(chromium, chromedriver, selenium module) or a reason they are missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (os.path.exists("/usr/bin/chromedriver") and "/usr/bin/chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        # Debian's python3-selenium, when the python3 running this is not Debian's
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import selenium  # noqa: F401,F811
        except ImportError:
            return None, "python3-selenium is not installed"
    if not chromium:
        return None, "chromium is not installed"
    if not driver:
        return None, "chromium-driver is not installed"
    return (chromium, driver), None


def start_browser(chromium, driver, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = chromium
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1280,800", "--user-data-dir=" + profile):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=o)


def main():
    cfg, args = parse_args(__doc__.split("\n")[0], extra=lambda ap: (
        ap.add_argument("--ui-dir", required=True, help="the built console (VTN_UI_DIR)"),
        ap.add_argument("--artifacts", required=True, help="where the screenshots go")))
    parts, why = browser_parts()
    if not parts:
        print("SKIP e2e.console: %s (deploy/setup.sh installs chromium, chromium-driver, python3-selenium)" % why)
        return SKIP
    cfg.require("gateway", "worker", "scheduler", "redis_server", "schema")
    check(os.path.exists(os.path.join(args.ui_dir, "index.html")), "no built console in %s" % args.ui_dir)
    os.makedirs(args.artifacts, exist_ok=True)
    install_signal_handlers()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    from selenium.common.exceptions import StaleElementReferenceException

    checks = Checks("e2e.console")
    with checks.processes():
        with Stack(cfg, name="e2e-console") as st:
            v = Validator(cfg.schema, workdir=st.tmpdir)
            # a client CA for the certificate actions (vtnctl is built next to the gateway)
            vtnctl = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(cfg.gateway))), "tools", "vtnctl")
            ca_dir = os.path.join(st.tmpdir, "ca")
            subprocess.run([vtnctl, "ca", "create", "--dir", ca_dir, "--cn", "console e2e CA"],
                           check=True, stdout=subprocess.DEVNULL, timeout=60)
            gw = st.start_basic(workers=1, worker_env={"VTN_CA_DIR": ca_dir},
                                gateway_env={"VTN_API_TOKEN": st.api_token, "VTN_UI_DIR": args.ui_dir})
            st.start_scheduler()
            base = "http://127.0.0.1:%d/ui/" % gw.ports["api"]
            api = Api("127.0.0.1", gw.ports["api"], st.api_token)
            b = start_browser(parts[0], parts[1], os.path.join(st.tmpdir, "chromium-profile"))
            s = {}

            def shot(name):
                b.save_screenshot(os.path.join(args.artifacts, name + ".png"))

            def calm(fn):
                """fn(), or None when the page re-rendered the element under it
                (Preact replaces nodes; the wait that calls this looks again)."""
                def look():
                    try:
                        return fn()
                    except StaleElementReferenceException:
                        return None
                return look

            def find(css, timeout=UI_WAIT):
                return wait_for("element %s" % css, lambda: (b.find_elements(By.CSS_SELECTOR, css) or [None])[0],
                                timeout=timeout)

            def text_of(css):
                els = b.find_elements(By.CSS_SELECTOR, css)
                return (calm(lambda: els[0].text)() or "") if els else ""

            def wait_text(css, want, timeout=UI_WAIT):
                wait_for("%r in %s (now %r)" % (want, css, text_of(css)), lambda: want in text_of(css), timeout=timeout)

            def button(label):
                return wait_for("button %r" % label, calm(lambda: [e for e in b.find_elements(By.TAG_NAME, "button")
                                                                   if e.text.strip() == label and e.is_enabled()] or None))[0]

            def field(label):
                """The input or select inside the <label> whose text starts with label."""
                def look():
                    for lab in b.find_elements(By.CSS_SELECTOR, "label.field"):
                        span = lab.find_elements(By.TAG_NAME, "span")
                        if span and span[0].text.strip() == label:
                            el = lab.find_elements(By.CSS_SELECTOR, "input, select")
                            if el:
                                return el[0]
                    return None
                return wait_for("field %r" % label, calm(look))

            def type_into(label, text):
                el = field(label)
                el.clear()
                el.send_keys(text)

            def nav(label):
                b.find_element(By.LINK_TEXT, label).click()

            def wrong_token_refused():
                b.get(base)
                find("#token").send_keys("not-the-token")
                shot("01-login")
                button("Sign in").click()
                wait_text("[role=alert]", "401")
                check("bearer token" in text_of("[role=alert]"), "the API's words: %r" % text_of("[role=alert]"))
                eq(b.execute_script("return sessionStorage.getItem('openvtn.token')"), None, "a wrong token is not kept")

            def log_in():
                b.get(base)
                el = find("#token")
                el.clear()
                el.send_keys(st.api_token + Keys.ENTER)  # the keyboard alone signs in
                wait_text("h1", "Fleet")
                eq(b.execute_script("return sessionStorage.getItem('openvtn.token')"), st.api_token, "token kept for the tab")
                eq(b.get_cookies(), [], "no cookie")
                b.refresh()  # kept across a reload of the tab
                wait_text("h1", "Fleet")

            def pre_provision():
                type_into("venName", VEN_NAME)
                button("Provision").click()
                wait_text("h1", "VEN %s" % VEN_NAME)
                s["ven_id"] = b.current_url.rstrip("/").split("/")[-1]
                check(s["ven_id"], "no venID in the URL %s" % b.current_url)
                wait_text(".card", "provisioned")
                shot("03-ven-provisioned")
                r = api.call("GET", "/api/v1/vens/" + s["ven_id"])
                eq(r.status, 200, "the provisioned VEN through the API")
                eq(r.json()["venName"], VEN_NAME, "its venName")

            def polling_ven_online():
                ven = Ven("127.0.0.1", gw.ports["oadr"], v, name=VEN_NAME)
                ven.query()
                ven.register()
                eq(ven.ven_id, s["ven_id"], "the VEN registered as the provisioned record")
                # reports: offer one; the VTN's policy requests it (oadrCreateReport)
                ven.send("EiReport", oadr.register_report(ven.ven_id, SPEC, RIDS, min_period="PT1M"),
                         "oadrRegisteredReport", "200")
                cr = ven.poll("oadrCreateReport")
                s["rr"] = oadr.find_all(cr.payload, "oadrCreateReport/oadrReportRequest/reportRequestID")[0].text
                ven.send("EiReport", oadr.created_report(200, cr.get("requestID"), [s["rr"]], ven.ven_id),
                         "oadrResponse", "200")
                s["poller"] = PollingVen(ven, interval=0.5).start()
                nav("Fleet")
                row = "tr[data-ven='%s']" % s["ven_id"]
                wait_text(row, "online", timeout=30)
                shot("02-fleet")
                # the state filter is the API's (server-side)
                Select(field("State")).select_by_value("offline")
                button("Apply").click()
                wait_text("table.grid", "No VENs match.")
                Select(field("State")).select_by_value("online")
                type_into("Search", VEN_NAME[-5:])
                button("Apply").click()
                wait_text(row, "online")

            def programs_and_groups():
                nav("Programs and groups")
                wait_text("h1", "Programs and groups")
                type_into("Name", "Console CPP")
                type_into("marketContext", MARKET)
                button("Create program").click()
                wait_text("body", "Console CPP")
                type_into("groupID", "north")
                type_into("Members", s["ven_id"])
                button("Create group").click()
                wait_text("body", "Group north has 1 member")
                shot("04-programs")
                r = api.call("GET", "/api/v1/groups/north")
                eq(r.json()["venIDs"], [s["ven_id"]], "the group's members")

            def event_and_participation():
                nav("Events")
                wait_text("h1", "Events")
                Select(field("Program")).select_by_visible_text("Console CPP")
                type_into("Target groups", "north")
                find(".chart canvas")  # the step chart of the intervals, drawn before sending
                check("3 points" in text_of(".chart figcaption"), "step chart of 2 intervals: %r"
                      % text_of(".chart figcaption"))
                b.execute_script("document.querySelector('.chart').scrollIntoView({block: 'center'})")
                shot("05-event-form")
                button("Create event").click()
                wait_text("h1", "Event evt-")
                eid = text_of("h1").split()[-1]
                wait_text("[data-count=received]", "Received: 1", timeout=30)
                eq(text_of("[data-count=optIn]"), "Opted in: 0", "before the VEN answers")
                # the VEN opts in (oadrCreatedEvent) on its own connection
                ven2 = Ven("127.0.0.1", gw.ports["oadr"], v, name=VEN_NAME)
                ven2.ven_id = s["ven_id"]
                body = oadr.payload_xml(
                    '<oadr:oadrCreatedEvent ei:schemaVersion="2.0b"><pyld:eiCreatedEvent>'
                    '<ei:eiResponse><ei:responseCode>200</ei:responseCode><pyld:requestID/></ei:eiResponse>'
                    '<ei:eventResponses><ei:eventResponse><ei:responseCode>200</ei:responseCode>'
                    '<pyld:requestID>rq-1</pyld:requestID><ei:qualifiedEventID><ei:eventID>%s</ei:eventID>'
                    '<ei:modificationNumber>0</ei:modificationNumber></ei:qualifiedEventID>'
                    '<ei:optType>optIn</ei:optType></ei:eventResponse></ei:eventResponses>'
                    '<ei:venID>%s</ei:venID></pyld:eiCreatedEvent></oadr:oadrCreatedEvent>' % (eid, s["ven_id"]))
                ven2.send("EiEvent", body, "oadrResponse", "200")
                ven2.close()
                wait_text("[data-count=optIn]", "Opted in: 1", timeout=30)
                width = b.execute_script("return document.querySelector('.bar .in').getBoundingClientRect().width")
                check(width > 0, "the participation bar shows the opt-in (width %r)" % width)
                wait_text("tr[data-ven='%s']" % s["ven_id"], "optIn")
                shot("06-event-participation")
                s["eid"] = eid

            def event_modify_and_cancel():
                button("Modify").click()
                type_into("Interval 1 value", "3")
                button("Send the modification").click()
                wait_text("body", "Event %s modified (modification 1)." % s["eid"])
                ev = api.call("GET", "/api/v1/events/" + s["eid"]).json()
                eq((ev["modificationNumber"], ev["signals"][0]["intervals"][0]["value"]), (1, 3),
                   "the modification through the API")
                button("Cancel event").click()
                alert = b.switch_to.alert
                check("reaches 1 VEN" in alert.text, "the confirmation says how many VENs: %r" % alert.text)
                alert.accept()
                wait_text("body", "Cancelled; 1 VEN(s) get it")
                eq(api.call("GET", "/api/v1/events/" + s["eid"]).json()["eventStatus"], "cancelled",
                   "the event's status")

            def report_chart():
                now = time.time()
                ivs = []
                for k in range(5):
                    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 300 + 60 * k))
                    ivs.append((t, "PT1M", RIDS[0], "%d.5" % (10 + k * k)))
                ven3 = Ven("127.0.0.1", gw.ports["oadr"], v, name=VEN_NAME)
                ven3.ven_id = s["ven_id"]
                ven3.send("EiReport", oadr.update_report(s["ven_id"], s["rr"], SPEC, "rep-1",
                                                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), ivs),
                          "oadrUpdatedReport", "200")
                ven3.close()
                nav("Reports")
                type_into("VEN", s["ven_id"])
                button("Show").click()
                wait_text("body", SPEC)
                button("Draw").click()
                find(".chart canvas")
                wait_text(".chart figcaption", "5 points")
                b.execute_script("document.querySelector('.chart').scrollIntoView({block: 'end'})")
                shot("07-reports")

            def health():
                nav("Health")
                wait_text("h1", "Health")
                wait_text("body", "Processes")
                wait_text("table", "gateway")
                shot("08-health")

            def certificate_issue_and_revoke():
                # last: a VEN bound to a certificate it does not present is refused (463)
                s["poller"].stop()
                b.get(base + "vens/" + s["ven_id"])
                wait_text("h1", "VEN %s" % VEN_NAME)
                button("Issue certificate").click()
                wait_text("body", "Issued ")
                check(button("Download certificate PEM") and button("Download private key PEM"),
                      "the PEM downloads are offered")
                cert = api.call("GET", "/api/v1/certificates?venID=" + s["ven_id"]).json()["certificates"]
                eq(len(cert), 1, "one certificate issued for the VEN")
                wait_text("table", cert[0]["fingerprint"])
                wait_text("[aria-labelledby=h-cert] dl", cert[0]["fingerprint"])  # the VEN is bound to it
                shot("09-ven-certificate")
                button("Revoke").click()
                b.switch_to.alert.accept()  # the confirmation
                wait_text("body", "Revoked and unbound from the VEN")
                eq(api.call("GET", "/api/v1/certificates/" + cert[0]["serial"]).json()["status"], "revoked",
                   "the certificate's status")

            def fits_desktop_and_tablet():
                # no page scrolls sideways at 1280x800 nor on a tablet held upright
                for w, h in ((1280, 800), (820, 1180)):
                    b.set_window_size(w, h)
                    for page in ("", "programs", "events", "reports?venID=" + s["ven_id"], "health",
                                 "vens/" + s["ven_id"]):
                        b.get(base + page)
                        find("main h1")
                        time.sleep(0.3)  # let the page's first data arrive and lay out
                        over = b.execute_script(
                            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                        check(over <= 0, "/ui/%s at %dx%d is %d px too wide" % (page, w, h, over))
                    if w < 1000:
                        b.get(base)
                        wait_text("tr[data-ven='%s']" % s["ven_id"], VEN_NAME)
                        shot("10-tablet-fleet")
                b.set_window_size(1280, 800)

            def no_csp_or_script_errors():
                logs = b.get_log("browser")
                bad = [e["message"] for e in logs if e.get("level") == "SEVERE" and
                       ("Content Security Policy" in e["message"] or "Uncaught" in e["message"])]
                eq(bad, [], "CSP violations or uncaught errors in the browser's console")

            try:
                for name, fn in (("wrong_token_refused", wrong_token_refused), ("log_in", log_in),
                                 ("pre_provision", pre_provision), ("polling_ven_online", polling_ven_online),
                                 ("programs_and_groups", programs_and_groups),
                                 ("event_and_participation", event_and_participation),
                                 ("event_modify_and_cancel", event_modify_and_cancel),
                                 ("report_chart", report_chart), ("health", health),
                                 ("certificate_issue_and_revoke", certificate_issue_and_revoke),
                                 ("fits_desktop_and_tablet", fits_desktop_and_tablet),
                                 ("no_csp_or_script_errors", no_csp_or_script_errors)):
                    if not checks.run(name, fn):
                        shot("failed-" + name)
                        if name in ("log_in", "pre_provision"):
                            break  # the later steps build on these
            finally:
                if "poller" in s:
                    s["poller"].stop()  # bounded; a second stop returns at once
                b.quit()
                api.close()
            checks.keep_logs_on_failure(st)
    print("screenshots in %s" % args.artifacts)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
