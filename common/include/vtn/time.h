#ifndef VTN_TIME_H
#define VTN_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t vtn_now_ms(void);   /* wall clock, ms since the Unix epoch */
uint64_t vtn_mono_ns(void); /* monotonic clock */
/* "2026-11-26T06:40:00Z" (or with .mmm when ms != 0): UTC with a trailing Z, as the 2.0b schema
 * wants. */
const char *vtn_time_format(int64_t ms, char *out, size_t outlen);

#endif
