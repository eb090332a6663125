#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn_internal.h"

static unsigned bucket_of(uint64_t v)
{
    if (v > BN_HIST_MAX_NS)
        v = BN_HIST_MAX_NS;
    if (v < 2 * BN_HIST_SUB)
        return (unsigned)v; /* exact below 256 ns */
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - BN_HIST_SUB_BITS;
    /* v >> e is in [SUB, 2*SUB), so buckets of consecutive exponents tile. */
    return e * BN_HIST_SUB + (unsigned)(v >> e);
}

/* Highest value that maps to bucket i. */
static uint64_t bucket_top(unsigned i)
{
    if (i < 2 * BN_HIST_SUB)
        return i;
    unsigned e = i / BN_HIST_SUB - 1;
    uint64_t m = i - e * BN_HIST_SUB;
    return ((m + 1) << e) - 1;
}

void bn_hist_init(bn_hist *h)
{
    memset(h, 0, sizeof *h);
}

void bn_hist_record(bn_hist *h, uint64_t ns)
{
    h->counts[bucket_of(ns)]++;
    if (h->total == 0 || ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
    h->total++;
    h->sum += (double)ns;
}

uint64_t bn_hist_quantile(const bn_hist *h, double q)
{
    if (h->total == 0)
        return 0;
    if (q <= 0)
        return h->min;
    if (q >= 1)
        return h->max;
    /* The rank of the q-th sample, 1-based, rounded up: p99 of 100 samples is the 99th. */
    uint64_t rank = (uint64_t)(q * (double)h->total);
    if ((double)rank < q * (double)h->total)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BN_HIST_N; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = bucket_top(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double bn_hist_mean(const bn_hist *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t bn_coverage_ns(const uint64_t *t, uint32_t n, double q)
{
    if (n == 0)
        return BN_NEVER;
    uint64_t k = (uint64_t)ceil(q * (double)n - 1e-9);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    uint64_t *s = malloc((size_t)n * sizeof *s);
    if (s == NULL)
        return BN_NEVER;
    memcpy(s, t, (size_t)n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u64);
    uint64_t v = s[k - 1];
    free(s);
    return v;
}
