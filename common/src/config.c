#include "vtn/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vtn/log.h"
#include "vtn/net.h"

#ifndef VTN_VERSION
#define VTN_VERSION "dev"
#endif

static int parse_scaled(const char *s, long long *out, const char *const *units,
                        const long long *mult, size_t nunits, long long plain_mult)
{
    char *end;
    errno = 0;
    if (s == NULL || !isdigit((unsigned char)*s))
        return -EINVAL;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return -EINVAL;
    while (*end == ' ')
        end++;
    long long m = plain_mult;
    if (*end) {
        size_t i;
        for (i = 0; i < nunits; i++)
            if (strcasecmp(end, units[i]) == 0)
                break;
        if (i == nunits)
            return -EINVAL;
        m = mult[i];
    }
    if (v > 0 && m > 0 && v > __LONG_LONG_MAX__ / m)
        return -EINVAL;
    *out = v * m;
    return 0;
}

int vtn_parse_size(const char *s, long long *out)
{
    static const char *const units[] = {"b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib"};
    static const long long mult[] = {1,       1024,    1024,    1024,      1048576,
                                     1048576, 1048576, 1 << 30, 1LL << 30, 1LL << 30};
    return parse_scaled(s, out, units, mult, sizeof mult / sizeof mult[0], 1);
}

int vtn_parse_ms(const char *s, long long *out)
{
    static const char *const units[] = {"ms", "s", "m", "min", "h"};
    static const long long mult[] = {1, 1000, 60000, 60000, 3600000};
    return parse_scaled(s, out, units, mult, sizeof mult / sizeof mult[0], 1);
}

int vtn_cfg_list_next(const char **cursor, const char **item, size_t *len)
{
    const char *p = *cursor;
    if (p == NULL || *p == '\0')
        return 0;
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    *cursor = p + n + (e != NULL);
    while (n && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    *item = p;
    *len = n;
    return 1;
}

int vtn_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *type_hint(vtn_cfg_type t)
{
    switch (t) {
    case VTN_CFG_INT:
        return "integer";
    case VTN_CFG_SIZE:
        return "size, e.g. 64k, 4MiB";
    case VTN_CFG_MS:
        return "duration, e.g. 500ms, 10s, 2m";
    case VTN_CFG_BOOL:
        return "true|false";
    case VTN_CFG_ADDR:
        return "host:port";
    default:
        return "string";
    }
}

static int set_item(const vtn_cfg_item *it, void *cfg, const char *val, const char *from, char *err,
                    size_t errlen)
{
    char *field = (char *)cfg + it->offset;
    long long v = 0;
    int rc = 0, b = 0;
    switch (it->type) {
    case VTN_CFG_STR:
    case VTN_CFG_SECRET:
    case VTN_CFG_ADDR: {
        if (it->type == VTN_CFG_ADDR) {
            struct sockaddr_storage ss;
            if (vtn_addr_parse(val, &ss) < 0) {
                snprintf(err, errlen, "%s (from %s): \"%s\" is not a host:port address", it->env,
                         from, val);
                return -EINVAL;
            }
        }
        char *copy = strdup(val);
        if (copy == NULL)
            return -ENOMEM;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case VTN_CFG_BOOL:
        if (vtn_parse_bool(val, &b) < 0) {
            snprintf(err, errlen, "%s (from %s): \"%s\" is not a boolean (true|false)", it->env,
                     from, val);
            return -EINVAL;
        }
        *(int *)field = b;
        return 0;
    case VTN_CFG_INT: {
        char *end;
        errno = 0;
        v = strtoll(val, &end, 10);
        if (*val == '\0' || *end != '\0' || errno)
            rc = -EINVAL;
        break;
    }
    case VTN_CFG_SIZE:
        rc = vtn_parse_size(val, &v);
        break;
    case VTN_CFG_MS:
        rc = vtn_parse_ms(val, &v);
        break;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s (from %s): \"%s\" is not a %s", it->env, from, val,
                 type_hint(it->type));
        return -EINVAL;
    }
    if ((it->min || it->max) && (v < it->min || v > it->max)) {
        snprintf(err, errlen, "%s (from %s): %s is out of range [%lld, %lld]", it->env, from, val,
                 it->min, it->max);
        return -EINVAL;
    }
    *(long long *)field = v;
    return 0;
}

static void print_help(const vtn_cfg_item *items, size_t n, const char *prog, const char *summary)
{
    printf("%s %s\n%s\n\nUsage: %s [--flag value ...]\n\n"
           "Every setting comes from an environment variable; a flag overrides it.\n\n",
           prog, VTN_VERSION, summary, prog);
    for (size_t i = 0; i < n; i++) {
        const vtn_cfg_item *it = &items[i];
        printf("  %s", it->env);
        if (it->flag)
            printf(", %s", it->flag);
        printf("  (%s)\n      %s\n", type_hint(it->type), it->help);
        if (it->type == VTN_CFG_SECRET)
            printf("      default: %s\n", it->def && *it->def ? "(set)" : "(empty)");
        else
            printf("      default: %s\n", it->def && *it->def ? it->def : "(empty)");
        if ((it->min || it->max) && it->type != VTN_CFG_STR)
            printf("      range: %lld .. %lld%s\n", it->min, it->max,
                   it->type == VTN_CFG_MS     ? " ms"
                   : it->type == VTN_CFG_SIZE ? " bytes"
                                              : "");
    }
    printf("\n  VTN_LOG_LEVEL\n      debug, info, warn or error\n      default: info\n"
           "\n  --help     this text\n  --version  the version\n");
}

int vtn_config_load(const vtn_cfg_item *items, size_t n, void *cfg, int argc, char **argv,
                    const char *prog, const char *summary, char *err, size_t errlen)
{
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            print_help(items, n, prog, summary);
            return 1;
        }
        if (strcmp(argv[a], "--version") == 0) {
            printf("%s %s\n", prog, VTN_VERSION);
            return 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int rc = set_item(&items[i], cfg, items[i].def ? items[i].def : "", "default", err, errlen);
        /* An empty default for a number or address means "unset": leave it zero/NULL. */
        if (rc < 0 && items[i].def && *items[i].def)
            return rc;
        const char *env = getenv(items[i].env);
        if (env && (rc = set_item(&items[i], cfg, env, "environment", err, errlen)) < 0)
            return rc;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        const char *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t i;
        for (i = 0; i < n; i++)
            if (items[i].flag && strlen(items[i].flag) == klen &&
                strncmp(items[i].flag, arg, klen) == 0)
                break;
        if (i == n) {
            snprintf(err, errlen, "unknown argument \"%s\" (see --help)", arg);
            return -EINVAL;
        }
        const char *val = eq ? eq + 1 : NULL;
        int b;
        if (val == NULL && items[i].type == VTN_CFG_BOOL &&
            (a + 1 >= argc || vtn_parse_bool(argv[a + 1], &b) < 0)) {
            val = "true"; /* a flag on its own ("--json"); "--json false" still reads a value */
        } else if (val == NULL) {
            if (a + 1 >= argc) {
                snprintf(err, errlen, "%s needs a value", items[i].flag);
                return -EINVAL;
            }
            val = argv[++a];
        }
        int rc = set_item(&items[i], cfg, val, "flag", err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void vtn_config_log(const vtn_cfg_item *items, size_t n, const void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        const vtn_cfg_item *it = &items[i];
        const char *field = (const char *)cfg + it->offset;
        char q[300];
        switch (it->type) {
        case VTN_CFG_SECRET:
            vtn_info("config", "var=%s value=%s", it->env,
                     *(char *const *)field && **(char *const *)field ? "(set)" : "(empty)");
            break;
        case VTN_CFG_STR:
        case VTN_CFG_ADDR: {
            const char *s = *(char *const *)field ? *(char *const *)field : "";
            vtn_info("config", "var=%s value=%s", it->env,
                     vtn_log_quote(q, sizeof q, s, strlen(s)));
            break;
        }
        case VTN_CFG_BOOL:
            vtn_info("config", "var=%s value=%s", it->env, *(const int *)field ? "true" : "false");
            break;
        default:
            vtn_info("config", "var=%s value=%lld", it->env, *(const long long *)field);
            break;
        }
    }
}

void vtn_config_free(const vtn_cfg_item *items, size_t n, void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        vtn_cfg_type t = items[i].type;
        if (t == VTN_CFG_STR || t == VTN_CFG_SECRET || t == VTN_CFG_ADDR) {
            char **f = (char **)((char *)cfg + items[i].offset);
            free(*f);
            *f = NULL;
        }
    }
}

int vtn_config_start(const vtn_cfg_item *items, size_t n, void *cfg, int argc, char **argv,
                     const char *prog, const char *summary)
{
    char err[512];
    int rc = vtn_config_load(items, n, cfg, argc, argv, prog, summary, err, sizeof err);
    if (rc == 0)
        return -1;
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", prog, err);
    vtn_config_free(items, n, cfg);
    return rc < 0 ? 2 : 0;
}
