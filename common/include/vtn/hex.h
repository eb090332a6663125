/* Hexadecimal digits, as in cursors, ticket keys and percent escapes. */
#ifndef VTN_HEX_H
#define VTN_HEX_H

#include <stddef.h>

/* The value of one hex digit of either case, or -1. */
int vtn_hexval(int c);
/* Decodes the n hex digits at s (n even, n / 2 <= outlen) into out: the
 * number of bytes, or -1 for an odd count, a non-digit or too little room. */
int vtn_hex_decode(const char *s, size_t n, unsigned char *out, size_t outlen);

#endif
