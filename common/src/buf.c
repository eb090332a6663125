#include "vtn/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vtn_buf_init(vtn_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int vtn_buf_reserve(vtn_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -ENOBUFS;
    size_t need = b->len + n + 1; /* room for a terminating NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int vtn_buf_append(vtn_buf *b, const void *p, size_t n)
{
    int rc = vtn_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int vtn_buf_appends(vtn_buf *b, const char *s)
{
    return vtn_buf_append(b, s, strlen(s));
}

int vtn_buf_vprintf(vtn_buf *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return vtn_buf_append(b, small, (size_t)n);
    int rc = vtn_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int vtn_buf_printf(vtn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vtn_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int vtn_buf_append_xml(vtn_buf *b, const char *s, size_t n)
{
    size_t start = b->len;
    size_t run = 0; /* bytes of s not yet copied */
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            continue;
        }
        int rc = vtn_buf_append(b, s + run, i - run);
        if (rc == 0)
            rc = vtn_buf_appends(b, rep);
        if (rc < 0) {
            b->len = start; /* unchanged on error, as promised */
            if (b->data)
                b->data[start] = '\0';
            return rc;
        }
        run = i + 1;
    }
    int rc = vtn_buf_append(b, s + run, n - run);
    if (rc < 0) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
    }
    return rc;
}

void vtn_buf_reset(vtn_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void vtn_buf_free(vtn_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
