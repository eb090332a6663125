/* Structured one-line logs on stderr, logfmt style:
 *   2026-11-26T06:40:00.123Z level=info comp=gateway event=listen addr=127.0.0.1:8080
 * Callers give an event name and optional "key=value ..." pairs. Values with
 * spaces must be quoted by the caller (vtn_log_quote helps). Thread-safe. */
#ifndef VTN_LOG_H
#define VTN_LOG_H

#include <stddef.h>

enum vtn_log_level { VTN_LOG_DEBUG = 0, VTN_LOG_INFO, VTN_LOG_WARN, VTN_LOG_ERROR };

/* component: "gateway", "worker", ...; the level comes from VTN_LOG_LEVEL
 * (debug, info, warn, error; default info). */
void vtn_log_init(const char *component);
int vtn_log_enabled(int level);
void vtn_log(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s as a logfmt value into out (quoted and escaped when needed,
 * truncated to outlen); returns out. */
const char *vtn_log_quote(char *out, size_t outlen, const char *s, size_t n);

#define vtn_debug(ev, ...)                                                                         \
    do {                                                                                           \
        if (vtn_log_enabled(VTN_LOG_DEBUG))                                                        \
            vtn_log(VTN_LOG_DEBUG, ev, __VA_ARGS__);                                               \
    } while (0)
#define vtn_info(ev, ...) vtn_log(VTN_LOG_INFO, ev, __VA_ARGS__)
#define vtn_warn(ev, ...) vtn_log(VTN_LOG_WARN, ev, __VA_ARGS__)
#define vtn_error(ev, ...) vtn_log(VTN_LOG_ERROR, ev, __VA_ARGS__)

#endif
