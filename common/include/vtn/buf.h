/* Growable byte buffer with a hard cap (like curl's dynbuf "toobig"). */
#ifndef VTN_BUF_H
#define VTN_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct vtn_buf {
    char *data; /* NUL-terminated when len < cap; owned */
    size_t len;
    size_t cap;
    size_t max; /* appends that would pass this fail with -ENOBUFS */
} vtn_buf;

void vtn_buf_init(vtn_buf *b, size_t max);
/* 0, -ENOBUFS past the cap, -ENOMEM. On error the buffer is unchanged. */
int vtn_buf_append(vtn_buf *b, const void *p, size_t n);
int vtn_buf_appends(vtn_buf *b, const char *s);
int vtn_buf_printf(vtn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vtn_buf_vprintf(vtn_buf *b, const char *fmt, va_list ap);
/* Appends s with the five XML special characters escaped. */
int vtn_buf_append_xml(vtn_buf *b, const char *s, size_t n);
/* Makes room for n more bytes; the caller writes at data+len and then adds to len. */
int vtn_buf_reserve(vtn_buf *b, size_t n);
void vtn_buf_reset(vtn_buf *b); /* len = 0, memory kept */
void vtn_buf_free(vtn_buf *b);  /* releases memory; the buffer may be reused after init */

#endif
