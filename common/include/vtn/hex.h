/* Hexadecimal digits, as in cursors, ticket keys and percent escapes. */
#ifndef VTN_HEX_H
#define VTN_HEX_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit of either case, or -1. */
int vtn_hexval(int c);
/* Decodes the n hex digits at s (n even, n / 2 <= outlen) into out: the
 * number of bytes, or -1 for an odd count, a non-digit or too little room. */
int vtn_hex_decode(const char *s, size_t n, unsigned char *out, size_t outlen);
/* Writes v as 16 lower-case hex digits and a NUL into out, as
 * snprintf("%016" PRIx64) does, without printf's cost (request ids on the
 * hot path). */
void vtn_hex_u64(uint64_t v, char out[17]);

#endif
