/* Key builders over the patterns of vtn/keys.h (docs/redis-keys.md). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vtn/keys.h"

const char *vtn_key_build(char *out, const char *pattern, const char *a, const char *b)
{
    const char *parts[2] = {a, b};
    size_t o = 0, np = 0;
    for (const char *p = pattern; *p && o < VTN_KEY_MAX - 1; p++) {
        const char *end = *p == '<' ? strchr(p, '>') : NULL;
        if (end == NULL) {
            out[o++] = *p;
            continue;
        }
        /* A missing part leaves the key empty there: a lookup that misses
         * beats a key that silently names another record. */
        const char *v = np < 2 && parts[np] ? parts[np] : "";
        np++;
        size_t n = strlen(v);
        if (n > VTN_KEY_MAX - 1 - o)
            n = VTN_KEY_MAX - 1 - o;
        memcpy(out + o, v, n);
        o += n;
        p = end;
    }
    out[o] = '\0';
    return out;
}

_Static_assert((VTN_EVENT_VENS_SHARDS & (VTN_EVENT_VENS_SHARDS - 1)) == 0,
               "the shard is a mask of the hash");

unsigned vtn_event_vens_shard(const char *ven_id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)ven_id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (VTN_EVENT_VENS_SHARDS - 1);
}

const char *vtn_key_eventvens(char *out, const char *event_id, unsigned shard)
{
    char s[16];
    snprintf(s, sizeof s, "%u", shard);
    return vtn_key_build(out, VTN_KEY_EVENTVENS, event_id, s);
}
