/* Identifiers the VTN generates. Never all digits (some VENs turn those into
 * numbers); a letter prefix and lower-case hex from a CSPRNG. */
#ifndef VTN_ID_H
#define VTN_ID_H

#include <stddef.h>
#include <stdint.h>

#define VTN_ID_MAX 48

/* prefix + "-" + 20 hex chars (80 random bits), e.g. "ven-3f9a0c...". 0 or -EIO. */
int vtn_id_new(const char *prefix, char *out, size_t outlen);
/* Random 64-bit value from the kernel's CSPRNG; 0 or -EIO. */
int vtn_random64(uint64_t *out);

/* FNV-1a, 64 bits, of a string, continuing from h (VTN_FNV64_INIT to start):
 * a cheap, stable hash of identifiers for "same as before" checks and
 * table slots, never for anything an attacker must not predict. */
#define VTN_FNV64_INIT 1469598103934665603ULL
uint64_t vtn_fnv1a64(uint64_t h, const char *s);

#endif
