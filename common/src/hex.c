/* See vtn/hex.h. */
#include "vtn/hex.h"

int vtn_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int vtn_hex_decode(const char *s, size_t n, unsigned char *out, size_t outlen)
{
    if (n % 2 != 0 || n / 2 > outlen)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = vtn_hexval((unsigned char)s[i]), lo = vtn_hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

void vtn_hex_u64(uint64_t v, char out[17])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
    out[16] = '\0';
}
