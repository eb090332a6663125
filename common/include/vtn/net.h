/* Addresses and small networking helpers. */
#ifndef VTN_NET_H
#define VTN_NET_H

#include <sys/socket.h>

/* "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (resolved to 127.0.0.1),
 * port 0 allowed. 0 or -EINVAL. */
int vtn_addr_parse(const char *s, struct sockaddr_storage *out);
/* Formats ss as "ip:port" / "[ip]:port". Returns out. */
const char *vtn_addr_format(const struct sockaddr *sa, char *out, size_t outlen);

#endif
