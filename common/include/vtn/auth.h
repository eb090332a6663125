/* The management API's bearer token check, shared by the gateway (before a
 * body is read) and the worker (which answers the request). */
#ifndef VTN_AUTH_H
#define VTN_AUTH_H

#include <stddef.h>

/* 1 when the Authorization value header[0..len) is "Bearer <token>" (scheme
 * in any case, spaces around the token ignored), else 0; an empty token
 * never matches. The comparison takes the same time wherever the first
 * difference is, so the token cannot be guessed byte by byte. header may
 * be NULL when len is 0. */
int vtn_bearer_ok(const char *header, size_t len, const char *token, size_t token_len);

#endif
