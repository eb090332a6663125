"""A minimal runner for a test file made of several named checks, with a
per-check line and a final "N passed, M failed" line."""

import contextlib
import sys
import time
import traceback


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


def wait_for(what, fn, timeout=15.0, every=0.05):
    """Polls fn() until it returns something true and returns that; fails
    naming what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(every)


class Checks:
    def __init__(self, name):
        self.name = name
        self.passed = []
        self.failed = []

    def run(self, label, fn, *args, **kw):
        """Runs one check; an exception fails it (and is printed), the
        others still run."""
        t0 = time.monotonic()
        try:
            fn(*args, **kw)
        except Exception as e:  # report and go on with the next check
            self.failed.append(label)
            print("FAIL %s (%.2f s): %s" % (label, time.monotonic() - t0, e), flush=True)
            traceback.print_exc(file=sys.stdout)
            return False
        self.passed.append(label)
        print("ok   %s (%.2f s)" % (label, time.monotonic() - t0), flush=True)
        return True

    @contextlib.contextmanager
    def processes(self):
        """Wraps a test's `with Stack(...)` block: the Stack raises
        AssertionError when it ends if one of its processes misbehaved (died,
        or did not stop); that counts as one more failed check."""
        try:
            yield
        except AssertionError as e:
            self.failed.append("processes")
            print("FAIL processes: %s" % e, flush=True)

    def keep_logs_on_failure(self, st):
        """Last line in the Stack block: a failed check keeps the logs."""
        if self.failed:
            st.failed = True

    def summary(self):
        print("%s: %d passed, %d failed" % (self.name, len(self.passed), len(self.failed)), flush=True)
        return 0 if not self.failed else 1
