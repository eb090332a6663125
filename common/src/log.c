#include "vtn/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "vtn";
static int log_level = VTN_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vtn_log_init(const char *component)
{
    log_component = component;
    const char *lv = getenv("VTN_LOG_LEVEL");
    if (lv == NULL || *lv == '\0')
        return;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(lv, level_names[i]) == 0) {
            log_level = i;
            return;
        }
    }
    vtn_log(VTN_LOG_WARN, "config", "var=VTN_LOG_LEVEL value=%s msg=\"unknown level, using info\"",
            lv);
}

int vtn_log_enabled(int level)
{
    return level >= log_level;
}

void vtn_log(int level, const char *event, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(
        line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s pid=%d event=%s",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        ts.tv_nsec / 1000000, level_names[level & 3], log_component, (int)getpid(), event);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && len < sizeof line - 2) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
    }
    line[len++] = '\n';
    /* One write per line so lines from threads and processes never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

const char *vtn_log_quote(char *out, size_t outlen, const char *s, size_t n)
{
    if (outlen == 0)
        return out;
    int plain = n > 0;
    for (size_t i = 0; i < n && plain; i++)
        if (s[i] <= ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\' || (unsigned char)s[i] > 126)
            plain = 0;
    size_t o = 0;
    if (plain) {
        for (size_t i = 0; i < n && o + 1 < outlen; i++)
            out[o++] = s[i];
        out[o] = '\0';
        return out;
    }
    if (outlen < 3) {
        out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (size_t i = 0; i < n && o + 3 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < ' ' || c == 127) {
            out[o++] = ' '; /* control characters never reach a log line */
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
