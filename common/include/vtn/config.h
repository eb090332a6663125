/* One config table per process maps VTN_* environment variables (and
 * optional --flags) to fields of the process' config struct, with defaults
 * and bounds, validated at start. --help prints the table. */
#ifndef VTN_CONFIG_H
#define VTN_CONFIG_H

#include <stddef.h>

typedef enum {
    VTN_CFG_STR,   /* char * (heap copy, owned by the struct until vtn_config_free) */
    VTN_CFG_INT,   /* long long, bounded by min/max */
    VTN_CFG_SIZE,  /* long long bytes: "4194304", "64k", "4MiB", "1g" */
    VTN_CFG_MS,    /* long long milliseconds: "500ms", "10s", "2m", "1h"; plain number = ms */
    VTN_CFG_BOOL,  /* int: 1/0, true/false, yes/no, on/off */
    VTN_CFG_ADDR,  /* char * "host:port", "[v6]:port"; checked with vtn_addr_parse */
    VTN_CFG_SECRET /* char *, like STR but never printed */
} vtn_cfg_type;

typedef struct vtn_cfg_item {
    const char *env;  /* "VTN_OADR_LISTEN" */
    const char *flag; /* "--oadr-listen" or NULL */
    vtn_cfg_type type;
    size_t offset; /* offsetof(struct, field) */
    const char *def;
    long long min, max; /* for INT, SIZE and MS; ignored when min == max == 0 */
    const char *help;
} vtn_cfg_item;

/* Loads defaults, then the environment, then flags (--flag value or
 * --flag=value; a boolean flag may stand alone: "--json" is "--json true").
 * Returns 0 when the process should run, 1 when --help or --version was
 * printed (exit 0), and -EINVAL with a message in err (naming the variable
 * and the accepted range) otherwise. */
int vtn_config_load(const vtn_cfg_item *items, size_t n, void *cfg, int argc, char **argv,
                    const char *prog, const char *summary, char *err, size_t errlen);
/* What every process does with vtn_config_load at start: -1 when the
 * process should run on; otherwise the exit status for main, after --help
 * or --version (0), or a bad setting (2, after "prog: why" on stderr).
 * cfg is freed whenever the process is to exit. */
int vtn_config_start(const vtn_cfg_item *items, size_t n, void *cfg, int argc, char **argv,
                     const char *prog, const char *summary);
/* Logs every setting once at start (secrets as "set"/"unset"). */
void vtn_config_log(const vtn_cfg_item *items, size_t n, const void *cfg);
void vtn_config_free(const vtn_cfg_item *items, size_t n, void *cfg);

/* Walks a comma-separated setting ("a, b,c"): 1 with the next item, the
 * blanks around it trimmed (len may be 0: "a,,b"), and *cursor moved past
 * it; 0 at the end of the string (or a NULL cursor). */
int vtn_cfg_list_next(const char **cursor, const char **item, size_t *len);

/* Parsers, exposed for tests; 0 or -EINVAL. */
int vtn_parse_size(const char *s, long long *out);
int vtn_parse_ms(const char *s, long long *out);
int vtn_parse_bool(const char *s, int *out);

#endif
