/* Open connections per peer address (VTN_MAX_CONNECTIONS_PER_IP).
 *
 * One hash table entry per address that has a connection open; the entry
 * goes when its last connection closes, so the table never holds more
 * entries than there are connections. IPv4-mapped IPv6 addresses count as
 * the IPv4 address they carry, so a dual-stack listener cannot be used to
 * get a second quota. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"

struct gw_peer {
    struct gw_peer *next;
    gw_addr addr;
    uint32_t n; /* open connections from addr */
};

int gw_addr_key(const struct sockaddr *sa, gw_addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        out->family = AF_INET;
        memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(x)) {
            out->family = AF_INET;
            memcpy(out->addr, (const uint8_t *)x + 12, 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->addr, x, 16);
        }
        return 0;
    }
    return -EAFNOSUPPORT;
}

static uint32_t addr_hash(const gw_peers *t, const gw_addr *a)
{
    /* FNV-1a keyed with a per-process seed: a client choosing addresses
     * (an IPv6 /64 holds plenty) cannot aim them all at one chain */
    uint32_t h = 2166136261u ^ t->seed;
    const uint8_t *p = (const uint8_t *)a;
    for (size_t i = 0; i < sizeof *a; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

int gw_peers_init(gw_peers *t, size_t max_conns, uint32_t seed)
{
    memset(t, 0, sizeof *t);
    size_t n = gw_table_size(max_conns, (size_t)1 << 22);
    t->b = calloc(n, sizeof *t->b);
    if (!t->b)
        return -ENOMEM;
    t->mask = n - 1;
    t->seed = seed;
    return 0;
}

void gw_peers_free(gw_peers *t)
{
    for (size_t i = 0; t->b && i <= t->mask; i++) {
        while (t->b[i]) {
            gw_peer *p = t->b[i];
            t->b[i] = p->next;
            free(p);
        }
    }
    free(t->b);
    t->b = NULL;
    t->npeers = 0;
}

int gw_peers_acquire(gw_peers *t, const gw_addr *a, uint32_t max)
{
    gw_peer **b = &t->b[addr_hash(t, a) & t->mask];
    for (gw_peer *p = *b; p; p = p->next) {
        if (memcmp(&p->addr, a, sizeof *a) == 0) {
            if (max && p->n >= max)
                return -EMFILE;
            p->n++;
            return 0;
        }
    }
    gw_peer *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->addr = *a;
    p->n = 1;
    p->next = *b;
    *b = p;
    t->npeers++;
    return 0;
}

void gw_peers_release(gw_peers *t, const gw_addr *a)
{
    for (gw_peer **b = &t->b[addr_hash(t, a) & t->mask]; *b; b = &(*b)->next) {
        gw_peer *p = *b;
        if (memcmp(&p->addr, a, sizeof *a) != 0)
            continue;
        if (--p->n == 0) {
            *b = p->next;
            free(p);
            t->npeers--;
        }
        return;
    }
}

uint32_t gw_peers_count(const gw_peers *t, const gw_addr *a)
{
    for (gw_peer *p = t->b[addr_hash(t, a) & t->mask]; p; p = p->next)
        if (memcmp(&p->addr, a, sizeof *a) == 0)
            return p->n;
    return 0;
}
