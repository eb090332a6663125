/* Trusted-proxy mode: which peer addresses may assert a client identity in a
 * header, and how that header becomes the OpenADR fingerprint.
 *
 * Behind a TLS-terminating proxy (deploy/nginx/openvtn.conf) the gateway
 * never sees the VEN's certificate; the proxy verified it and passes it on,
 * URL-encoded (nginx's $ssl_client_escaped_cert), or passes a fingerprint it
 * computed. Only peers listed in VTN_TRUSTED_PROXIES are believed; the
 * connection layer refuses the headers from anyone else (docs/tls.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "gw_internal.h"
#include "vtn/fingerprint.h"
#include "vtn/hex.h"

/* ---- addresses ------------------------------------------------------------- */

static int parse_entry(const char *var, const char *s, gw_cidr *out, char *err, size_t errlen)
{
    char ip[64];
    const char *slash = strchr(s, '/');
    size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
    int maxbits;

    memset(out, 0, sizeof *out);
    if (iplen == 0 || iplen >= sizeof ip)
        goto bad;
    memcpy(ip, s, iplen);
    ip[iplen] = '\0';
    if (inet_pton(AF_INET, ip, out->addr) == 1) {
        out->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, ip, out->addr) == 1) {
        out->family = AF_INET6;
        maxbits = 128;
    } else {
        goto bad;
    }
    out->bits = (uint8_t)maxbits;
    if (slash) {
        char *end;
        const char *b = slash + 1;
        if (*b < '0' || *b > '9')
            goto bad;
        long v = strtol(b, &end, 10);
        if (*end != '\0' || v < 0 || v > maxbits)
            goto bad;
        out->bits = (uint8_t)v;
        /* host bits set: "10.0.0.1/8" is more often a typo than a wish */
        for (int i = out->bits; i < maxbits; i++) {
            if (out->addr[i / 8] & (0x80 >> (i % 8))) {
                snprintf(err, errlen, "%s: \"%s\" has host bits set after the /%d prefix", var, s,
                         out->bits);
                return -EINVAL;
            }
        }
    }
    return 0;
bad:
    snprintf(err, errlen, "%s: \"%s\" is not an IP address or CIDR", var, s);
    return -EINVAL;
}

int gw_proxies_parse(const char *list, gw_proxies *out, char *err, size_t errlen)
{
    return gw_cidrs_parse("VTN_TRUSTED_PROXIES", list, out, err, errlen);
}

int gw_cidrs_parse(const char *var, const char *list, gw_proxies *out, char *err, size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    if (list == NULL)
        return 0;
    char *copy = strdup(list);
    if (copy == NULL)
        return -ENOMEM;
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (*tok == '\0')
            continue;
        if (out->n == GW_PROXIES_MAX) {
            snprintf(err, errlen, "%s: more than %d entries", var, GW_PROXIES_MAX);
            rc = -EINVAL;
            break;
        }
        gw_cidr c;
        if ((rc = parse_entry(var, tok, &c, err, errlen)) != 0)
            break;
        gw_cidr *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
        if (nv == NULL) {
            rc = -ENOMEM;
            break;
        }
        out->v = nv;
        out->v[out->n++] = c;
    }
    free(copy);
    if (rc != 0)
        gw_proxies_free(out);
    return rc;
}

void gw_proxies_free(gw_proxies *p)
{
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

static int prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int gw_proxies_match(const gw_proxies *p, const struct sockaddr *sa)
{
    uint8_t a4[4], a6[16];
    int has4 = 0, has6 = 0;
    if (sa->sa_family == AF_INET) {
        memcpy(a4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        has4 = 1;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        memcpy(a6, x, 16);
        has6 = 1;
        if (IN6_IS_ADDR_V4MAPPED(x)) { /* a dual-stack listener sees IPv4 peers this way */
            memcpy(a4, a6 + 12, 4);
            has4 = 1;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < p->n; i++) {
        const gw_cidr *c = &p->v[i];
        if (c->family == AF_INET && has4 && prefix_eq(c->addr, a4, c->bits))
            return 1;
        if (c->family == AF_INET6 && has6 && prefix_eq(c->addr, a6, c->bits))
            return 1;
    }
    return 0;
}

/* ---- identity headers ------------------------------------------------------- */

int gw_proxy_cert_fingerprint(const char *v, size_t n, char out[VTN_FINGERPRINT_SIZE])
{
    out[0] = '\0';
    if (n == 0)
        return -EINVAL;
    char *pem = malloc(n);
    if (pem == NULL)
        return -ENOMEM;
    /* %XX escapes only: base64's '+' stays '+' (nginx escapes it as %2B
     * anyway), so '+' is never a space here. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '%') {
            int hi = i + 2 < n ? vtn_hexval((unsigned char)v[i + 1]) : -1,
                lo = i + 2 < n ? vtn_hexval((unsigned char)v[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(pem);
                return -EINVAL;
            }
            pem[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            pem[k++] = v[i];
        }
    }
    int rc = -EINVAL;
    BIO *b = BIO_new_mem_buf(pem, (int)k);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    if (x != NULL && vtn_fingerprint_x509(x, out) == 0)
        rc = 0;
    ERR_clear_error(); /* the queue is per thread and shared by every connection */
    X509_free(x);
    BIO_free(b);
    free(pem);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

int gw_proxy_fp_header(const char *v, size_t n, char out[VTN_FINGERPRINT_SIZE])
{
    char tmp[160];
    out[0] = '\0';
    if (n == 0 || n >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    return vtn_fingerprint_format(tmp, out) == 0 ? 0 : -EINVAL;
}

int gw_header_name_check(const char *s, char out[GW_HNAME_MAX], size_t *len)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t n = strlen(s);
    *len = 0;
    if (n == 0 || n >= GW_HNAME_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c != '\0' && strchr(tchar, c) != NULL);
        if (!ok)
            return -EINVAL;
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    *len = n;
    return 0;
}
