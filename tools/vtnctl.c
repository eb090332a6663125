/* vtnctl: the VTN's own PKI from the command line. A CA directory holds the
 * CA certificate and key, an index of every certificate it issued (and which
 * are revoked), a copy of each, and the next CRL number; commands that change
 * it take a lock on it, so two vtnctl runs never lose an index line.
 *
 * Exit codes: 0 done, 1 failed (message on stderr), 2 bad usage. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "vtn/fingerprint.h"
#include "vtn/pki.h"
#include "vtn/tlsconf.h"

#define EXIT_USAGE 2
#define CA_DAYS_DEFAULT 3650
#define CERT_DAYS_DEFAULT 825
#define CRL_DAYS_DEFAULT 30
#define MAX_DAYS 36500
#define INDEX_MAX_LINES 1000000 /* a CA directory is for a fleet, not the internet */
#define PATHLEN 4096

static const char *prog = "vtnctl";

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see --help)\n");
    exit(EXIT_USAGE);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAILURE);
}

static void pathcat(char *out, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, PATHLEN, "%s/%s", dir, name) >= PATHLEN)
        die("path too long: %s/%s", dir, name);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ------------------------------------------------------------------------
 * Options: "--name value", "--name=value" and flags, per subcommand
 * --------------------------------------------------------------------- */

typedef struct opt {
    const char *name; /* without the leading "--" */
    int has_arg;
    const char **val; /* for options with an argument */
    int *flag;        /* for flags */
} opt;

static int want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

/* Parses argv against opts; positional arguments are collected in pos.
 * Returns how many positional arguments there were. */
static int parse_opts(int argc, char **argv, const opt *opts, size_t nopts, char **pos, int maxpos)
{
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *eq;
        size_t len;
        const opt *o = NULL;

        if (strncmp(a, "--", 2) != 0) {
            if (npos >= maxpos)
                die_usage("unexpected argument \"%s\"", a);
            pos[npos++] = argv[i];
            continue;
        }
        a += 2;
        eq = strchr(a, '=');
        len = eq != NULL ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; k < nopts; k++) {
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, a, len) == 0)
                o = &opts[k];
        }
        if (o == NULL)
            die_usage("unknown option --%.*s", (int)len, a);
        if (!o->has_arg) {
            if (eq != NULL)
                die_usage("--%s takes no value", o->name);
            *o->flag = 1;
        } else if (eq != NULL) {
            *o->val = eq + 1;
        } else {
            if (i + 1 >= argc)
                die_usage("--%s needs a value", o->name);
            *o->val = argv[++i];
        }
    }
    return npos;
}

static long parse_days(const char *s, long def, const char *what)
{
    char *end;
    long v;
    if (s == NULL)
        return def;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < 1 || v > MAX_DAYS)
        die_usage("%s: \"%s\" is not a number of days between 1 and %d", what, s, MAX_DAYS);
    return v;
}

static vtn_key_type parse_key(const char *s)
{
    vtn_key_type t = VTN_KEY_EC;
    if (s != NULL && vtn_key_type_parse(s, &t) < 0)
        die_usage("--key: \"%s\" is not ec or rsa", s);
    return t;
}

static const char *need(const char *v, const char *name)
{
    if (v == NULL || v[0] == '\0')
        die_usage("--%s is required", name);
    return v;
}

/* ------------------------------------------------------------------------
 * The CA directory
 * --------------------------------------------------------------------- */

typedef struct ca_dir {
    const char *dir;
    char cert_path[PATHLEN], key_path[PATHLEN], index_path[PATHLEN], crlnum_path[PATHLEN],
        certs_dir[PATHLEN], lock_path[PATHLEN];
    X509 *cert;
    EVP_PKEY *key;
    int lock_fd;
} ca_dir;

static void ca_paths(ca_dir *ca, const char *dir)
{
    memset(ca, 0, sizeof(*ca));
    ca->dir = dir;
    ca->lock_fd = -1;
    pathcat(ca->cert_path, dir, "ca.pem");
    pathcat(ca->key_path, dir, "ca.key");
    pathcat(ca->index_path, dir, "index.txt");
    pathcat(ca->crlnum_path, dir, "crlnumber");
    pathcat(ca->certs_dir, dir, "certs");
    pathcat(ca->lock_path, dir, ".lock");
}

/* Serializes every command that changes the directory. */
static void ca_lock(ca_dir *ca)
{
    ca->lock_fd = open(ca->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ca->lock_fd < 0 || flock(ca->lock_fd, LOCK_EX) != 0)
        die("%s: cannot lock: %s", ca->lock_path, strerror(errno));
}

static void ca_open(ca_dir *ca, const char *dir, int lock)
{
    char err[512];
    ca_paths(ca, dir);
    if (!exists(ca->cert_path))
        die("%s is not a CA directory (no ca.pem): create one with `vtnctl ca create --dir %s`",
            dir, dir);
    if (lock)
        ca_lock(ca);
    ca->cert = vtn_pki_read_cert(ca->cert_path, err, sizeof(err));
    if (ca->cert == NULL)
        die("%s", err);
    ca->key = vtn_pki_read_key(ca->key_path, err, sizeof(err));
    if (ca->key == NULL)
        die("%s", err);
    if (X509_check_private_key(ca->cert, ca->key) != 1)
        die("%s does not match %s", ca->key_path, ca->cert_path);
}

static void ca_close(ca_dir *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    if (ca->lock_fd >= 0)
        close(ca->lock_fd); /* releases the lock */
}

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static time_t parse_iso(const char *s)
{
    struct tm tm;
    const char *end;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0')
        return (time_t)-1;
    return timegm(&tm);
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

/* One line of index.txt, tab-separated (see docs/tls.md):
 *   status(V|R) serial not_after revoked_at|- reason|- fingerprint subject */
typedef struct index_entry {
    char status;
    char serial[80];
    char not_after[32];
    char revoked_at[32];
    char reason[32];
    char fingerprint[VTN_FINGERPRINT_SIZE];
    char subject[512];
} index_entry;

typedef struct index_list {
    index_entry *e;
    size_t n, cap;
} index_list;

static void copy_field(char *dst, size_t cap, const char *src, const char *path, size_t line)
{
    if (strlen(src) >= cap)
        die("%s:%zu: field too long", path, line);
    memcpy(dst, src, strlen(src) + 1);
}

static void index_read(const ca_dir *ca, index_list *l)
{
    FILE *f = fopen(ca->index_path, "r");
    char line[2048];
    size_t lineno = 0;

    memset(l, 0, sizeof(*l));
    if (f == NULL) {
        if (errno == ENOENT)
            return;
        die("%s: %s", ca->index_path, strerror(errno));
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *fields[7], *save = NULL, *tok;
        int nf = 0;
        index_entry *e;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        for (tok = strtok_r(line, "\t", &save); tok != NULL; tok = strtok_r(NULL, "\t", &save)) {
            if (nf == 7)
                die("%s:%zu: more than 7 fields", ca->index_path, lineno);
            fields[nf++] = tok;
        }
        if (nf != 7 || (fields[0][0] != 'V' && fields[0][0] != 'R') || fields[0][1] != '\0')
            die("%s:%zu: not an index line", ca->index_path, lineno);
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            if (cap > INDEX_MAX_LINES)
                die("%s: more than %d certificates", ca->index_path, INDEX_MAX_LINES);
            l->e = realloc(l->e, cap * sizeof(*l->e));
            if (l->e == NULL)
                die("out of memory");
            l->cap = cap;
        }
        e = &l->e[l->n++];
        e->status = fields[0][0];
        copy_field(e->serial, sizeof(e->serial), fields[1], ca->index_path, lineno);
        copy_field(e->not_after, sizeof(e->not_after), fields[2], ca->index_path, lineno);
        copy_field(e->revoked_at, sizeof(e->revoked_at), fields[3], ca->index_path, lineno);
        copy_field(e->reason, sizeof(e->reason), fields[4], ca->index_path, lineno);
        copy_field(e->fingerprint, sizeof(e->fingerprint), fields[5], ca->index_path, lineno);
        copy_field(e->subject, sizeof(e->subject), fields[6], ca->index_path, lineno);
    }
    fclose(f);
}

static void index_format(const index_entry *e, char *out, size_t cap)
{
    snprintf(out, cap, "%c\t%s\t%s\t%s\t%s\t%s\t%s\n", e->status, e->serial, e->not_after,
             e->revoked_at, e->reason, e->fingerprint, e->subject);
}

/* Rewrites the whole index through a temporary file and rename(2). */
static void index_write(const ca_dir *ca, const index_list *l)
{
    char tmp[PATHLEN + 16], line[2048];
    FILE *f;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", ca->index_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
        die("%s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < l->n; i++) {
        index_format(&l->e[i], line, sizeof(line));
        fputs(line, f);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 ||
        rename(tmp, ca->index_path) != 0)
        die("%s: %s", ca->index_path, strerror(errno));
}

/* Subjects come from CSRs too: keep the index one line per certificate. */
static void subject_line(X509 *x, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = 0;

    out[0] = '\0';
    if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0)
        n = BIO_read(b, out, (int)cap - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(b);
    for (char *p = out; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
}

static void entry_from_cert(X509 *x, index_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->status = 'V';
    if (vtn_pki_serial_hex(x, e->serial, sizeof(e->serial)) < 0 ||
        vtn_fingerprint_x509(x, e->fingerprint) < 0)
        die("cannot read the serial or fingerprint of the certificate");
    iso_time(asn1_to_time(X509_get0_notAfter(x)), e->not_after);
    strcpy(e->revoked_at, "-");
    strcpy(e->reason, "-");
    subject_line(x, e->subject, sizeof(e->subject));
}

/* Records a newly issued certificate: a copy in certs/ and an index line. */
static void ca_record(const ca_dir *ca, X509 *x)
{
    index_entry e;
    char copy[PATHLEN], name[128], line[2048];
    int fd;

    entry_from_cert(x, &e);
    if (mkdir(ca->certs_dir, 0755) != 0 && errno != EEXIST)
        die("%s: %s", ca->certs_dir, strerror(errno));
    snprintf(name, sizeof(name), "%s.pem", e.serial);
    pathcat(copy, ca->certs_dir, name);
    if (vtn_pki_write_cert(copy, x, 0) < 0)
        die("%s: %s", copy, strerror(errno));
    index_format(&e, line, sizeof(line));
    fd = open(ca->index_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd) != 0)
        die("%s: %s", ca->index_path, strerror(errno));
    close(fd);
}

/* mkdir -p: the missing parents get 0755, path itself mode (an existing
 * path keeps its mode). 0 or -errno. */
static int mkdirs(const char *path, mode_t mode)
{
    char p[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(p))
        return -ENAMETOOLONG;
    memcpy(p, path, n + 1);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ------------------------------------------------------------------------
 * Commands
 * --------------------------------------------------------------------- */

static const char ca_create_help[] =
    "usage: vtnctl ca create --dir D [--key ec|rsa] [--days N] [--cn NAME]\n"
    "\n"
    "Creates a client CA in directory D (created with mode 0700 if missing,\n"
    "with its missing parents):\n"
    "ca.pem (the certificate to put in VTN_TLS_CLIENT_CA), ca.key (mode 0600),\n"
    "index.txt (issued and revoked serials) and crlnumber.\n"
    "\n"
    "  --key ec|rsa   ECC P-256 (default) or RSA 2048\n"
    "  --days N       validity, default 3650\n"
    "  --cn NAME      subject CN, default \"openvtn client CA (ECC|RSA)\"\n"
    "\n"
    "Fails if D already holds a CA.\n";

static int cmd_ca_create(int argc, char **argv)
{
    const char *dir = NULL, *key = NULL, *days_s = NULL, *cn = NULL;
    const opt opts[] = {{"dir", 1, &dir, NULL},
                        {"key", 1, &key, NULL},
                        {"days", 1, &days_s, NULL},
                        {"cn", 1, &cn, NULL}};
    char err[512], cn_def[64];
    ca_dir ca;

    if (want_help(argc, argv)) {
        fputs(ca_create_help, stdout);
        return 0;
    }
    parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0);
    need(dir, "dir");
    vtn_key_type kt = parse_key(key);
    long days = parse_days(days_s, CA_DAYS_DEFAULT, "--days");
    if (cn == NULL) {
        snprintf(cn_def, sizeof(cn_def), "openvtn client CA (%s)",
                 kt == VTN_KEY_EC ? "ECC" : "RSA");
        cn = cn_def;
    }

    int mrc = mkdirs(dir, 0700);
    if (mrc < 0)
        die("%s: %s", dir, strerror(-mrc));
    ca_paths(&ca, dir);
    ca_lock(&ca);
    if (exists(ca.cert_path) || exists(ca.key_path))
        die("%s already holds a CA (ca.pem or ca.key exists); nothing changed", dir);

    EVP_PKEY *k = vtn_pki_keygen(kt);
    if (k == NULL)
        die("%s", vtn_pki_errstr(err, sizeof(err), "key generation"));
    vtn_cert_spec spec = {.cn = cn, .key = k, .is_ca = 1, .days = days};
    X509 *x = vtn_pki_issue(&spec, NULL, k, err, sizeof(err));
    if (x == NULL)
        die("%s", err);
    /* key first: a ca.pem without its key would be a CA nobody can use */
    int rc = vtn_pki_write_key(ca.key_path, k, 0);
    if (rc < 0)
        die("%s: %s", ca.key_path, strerror(-rc));
    rc = vtn_pki_write_cert(ca.cert_path, x, 0);
    if (rc < 0)
        die("%s: %s", ca.cert_path, strerror(-rc));
    FILE *f = fopen(ca.crlnum_path, "w");
    if (f == NULL || fprintf(f, "1\n") < 0 || fclose(f) != 0)
        die("%s: %s", ca.crlnum_path, strerror(errno));
    f = fopen(ca.index_path, "a");
    if (f == NULL || fclose(f) != 0)
        die("%s: %s", ca.index_path, strerror(errno));

    char fp[VTN_FINGERPRINT_SIZE];
    vtn_fingerprint_x509(x, fp);
    char subj[512];
    subject_line(x, subj, sizeof(subj));
    printf("CA          %s\nkey         %s\nsubject     %s\nfingerprint %s\n", ca.cert_path,
           ca.key_path, subj, fp);
    X509_free(x);
    EVP_PKEY_free(k);
    ca.cert = NULL;
    ca.key = NULL;
    ca_close(&ca);
    return 0;
}

static const char cert_issue_help[] =
    "usage: vtnctl cert issue --ca-dir D --cn NAME --out-dir O [--name FILE]\n"
    "                         [--key ec|rsa] [--days N] [--server] [--san LIST] [--force]\n"
    "\n"
    "Generates a key and a certificate signed by the CA in D, writes\n"
    "O/FILE.pem and O/FILE.key (mode 0600), records it in D's index and prints\n"
    "its OpenADR fingerprint (bind or pre-provision the VEN with it).\n"
    "\n"
    "  --cn NAME      subject CN (for a VEN: its venName or device id)\n"
    "  --name FILE    file name without extension, default: the CN\n"
    "  --key ec|rsa   ECC P-256 (default) or RSA 2048\n"
    "  --days N       validity, default 825\n"
    "  --server       a server certificate: needs a subjectAltName (default DNS:<cn>)\n"
    "  --san LIST     subjectAltName, e.g. DNS:localhost,IP:127.0.0.1\n"
    "  --force        replace existing O/FILE.pem and O/FILE.key\n"
    "\n"
    "Every certificate carries extendedKeyUsage clientAuth and serverAuth.\n";

/* File names from a CN: keep letters, digits, '.', '-', '_'. */
static void file_name_from(const char *cn, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = cn; *p != '\0' && n + 1 < cap; p++)
        out[n++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '_';
    out[n] = '\0';
    if (n == 0 || out[0] == '.')
        die_usage("--name is needed: \"%s\" does not make a file name", cn);
}

static void print_issued(const char *cert_path, const char *key_path, X509 *x)
{
    char fp[VTN_FINGERPRINT_SIZE], serial[80], subj[512];
    vtn_fingerprint_x509(x, fp);
    vtn_pki_serial_hex(x, serial, sizeof(serial));
    subject_line(x, subj, sizeof(subj));
    printf("certificate %s\n", cert_path);
    if (key_path != NULL)
        printf("key         %s\n", key_path);
    printf("subject     %s\nserial      %s\nfingerprint %s\n", subj, serial, fp);
}

static int cmd_cert_issue(int argc, char **argv)
{
    const char *ca_d = NULL, *cn = NULL, *out_dir = NULL, *name = NULL, *key = NULL, *days_s = NULL,
               *san = NULL;
    int server = 0, force = 0;
    const opt opts[] = {
        {"ca-dir", 1, &ca_d, NULL}, {"cn", 1, &cn, NULL},         {"out-dir", 1, &out_dir, NULL},
        {"name", 1, &name, NULL},   {"key", 1, &key, NULL},       {"days", 1, &days_s, NULL},
        {"san", 1, &san, NULL},     {"server", 0, NULL, &server}, {"force", 0, NULL, &force}};
    char err[512], fname[256], cert_path[PATHLEN], key_path[PATHLEN], san_def[300];
    ca_dir ca;

    if (want_help(argc, argv)) {
        fputs(cert_issue_help, stdout);
        return 0;
    }
    parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0);
    need(ca_d, "ca-dir");
    need(cn, "cn");
    need(out_dir, "out-dir");
    vtn_key_type kt = parse_key(key);
    long days = parse_days(days_s, CERT_DAYS_DEFAULT, "--days");
    file_name_from(name != NULL ? name : cn, fname, sizeof(fname) - 8);
    if (server && san == NULL) {
        snprintf(san_def, sizeof(san_def), "DNS:%s", cn);
        san = san_def;
    }

    int mrc = mkdirs(out_dir, 0700);
    if (mrc < 0)
        die("%s: %s", out_dir, strerror(-mrc));
    strcat(fname, ".pem");
    pathcat(cert_path, out_dir, fname);
    strcpy(fname + strlen(fname) - 4, ".key");
    pathcat(key_path, out_dir, fname);
    if (!force && (exists(cert_path) || exists(key_path)))
        die("%s or %s exists; use --force to replace", cert_path, key_path);

    ca_open(&ca, ca_d, 1);
    EVP_PKEY *k = vtn_pki_keygen(kt);
    if (k == NULL)
        die("%s", vtn_pki_errstr(err, sizeof(err), "key generation"));
    vtn_cert_spec spec = {.cn = cn, .key = k, .days = days, .san = san};
    X509 *x = vtn_pki_issue(&spec, ca.cert, ca.key, err, sizeof(err));
    if (x == NULL)
        die("%s", err);
    int rc = vtn_pki_write_key(key_path, k, force);
    if (rc < 0)
        die("%s: %s", key_path, strerror(-rc));
    rc = vtn_pki_write_cert(cert_path, x, force);
    if (rc < 0)
        die("%s: %s", cert_path, strerror(-rc));
    ca_record(&ca, x);
    print_issued(cert_path, key_path, x);
    X509_free(x);
    EVP_PKEY_free(k);
    ca_close(&ca);
    return 0;
}

static const char cert_sign_csr_help[] =
    "usage: vtnctl cert sign-csr --ca-dir D --csr F --out F [--days N] [--server]\n"
    "                            [--san LIST] [--cn NAME] [--force]\n"
    "\n"
    "Signs a PEM certificate request (the VEN kept its key) with the CA in D,\n"
    "writes the certificate to --out, records it and prints its OpenADR\n"
    "fingerprint. The subject comes from the CSR (or --cn); extensions requested\n"
    "in the CSR are ignored: the certificate gets the same profile as\n"
    "`vtnctl cert issue`.\n"
    "\n"
    "  --days N     validity, default 825\n"
    "  --server     a server certificate: needs --san (default DNS:<cn>)\n"
    "  --san LIST   subjectAltName, e.g. DNS:ven1.example.com\n"
    "  --cn NAME    replace the CSR's subject with CN=NAME\n"
    "  --force      replace an existing --out file\n";

static int cmd_cert_sign_csr(int argc, char **argv)
{
    const char *ca_d = NULL, *csr_p = NULL, *out = NULL, *days_s = NULL, *san = NULL, *cn = NULL;
    int server = 0, force = 0;
    const opt opts[] = {{"ca-dir", 1, &ca_d, NULL},   {"csr", 1, &csr_p, NULL},
                        {"out", 1, &out, NULL},       {"days", 1, &days_s, NULL},
                        {"san", 1, &san, NULL},       {"cn", 1, &cn, NULL},
                        {"server", 0, NULL, &server}, {"force", 0, NULL, &force}};
    char err[512], san_def[300];
    ca_dir ca;

    if (want_help(argc, argv)) {
        fputs(cert_sign_csr_help, stdout);
        return 0;
    }
    parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0);
    need(ca_d, "ca-dir");
    need(csr_p, "csr");
    need(out, "out");
    long days = parse_days(days_s, CERT_DAYS_DEFAULT, "--days");
    if (!force && exists(out))
        die("%s exists; use --force to replace", out);

    X509_REQ *req = vtn_pki_read_csr(csr_p, err, sizeof(err));
    if (req == NULL)
        die("%s", err);
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL || X509_REQ_verify(req, pub) != 1)
        die("%s: the request's signature does not verify", csr_p);
    int base = EVP_PKEY_get_base_id(pub);
    if (base != EVP_PKEY_EC && base != EVP_PKEY_RSA)
        die("%s: the key is neither ECC nor RSA", csr_p);
    if (base == EVP_PKEY_RSA && EVP_PKEY_get_bits(pub) < 2048)
        die("%s: RSA keys need at least 2048 bits", csr_p);

    const X509_NAME *subject = cn != NULL ? NULL : X509_REQ_get_subject_name(req);
    if (subject != NULL && X509_NAME_entry_count(subject) == 0)
        die("%s: the request has an empty subject; give --cn", csr_p);
    if (server && san == NULL) {
        char cnbuf[256] = "";
        if (cn == NULL)
            X509_NAME_get_text_by_NID(subject, NID_commonName, cnbuf, sizeof(cnbuf));
        if (cn == NULL && cnbuf[0] == '\0')
            die_usage("--server needs --san: the request has no CN");
        snprintf(san_def, sizeof(san_def), "DNS:%s", cn != NULL ? cn : cnbuf);
        san = san_def;
    }

    ca_open(&ca, ca_d, 1);
    vtn_cert_spec spec = {.cn = cn, .subject = subject, .key = pub, .days = days, .san = san};
    X509 *x = vtn_pki_issue(&spec, ca.cert, ca.key, err, sizeof(err));
    if (x == NULL)
        die("%s", err);
    int rc = vtn_pki_write_cert(out, x, force);
    if (rc < 0)
        die("%s: %s", out, strerror(-rc));
    ca_record(&ca, x);
    print_issued(out, NULL, x);
    X509_free(x);
    X509_REQ_free(req);
    ca_close(&ca);
    return 0;
}

static const char cert_revoke_help[] =
    "usage: vtnctl cert revoke --ca-dir D (--cert F | --serial HEX) [--reason R]\n"
    "\n"
    "Marks a certificate issued by the CA in D as revoked in D's index. It is\n"
    "refused by gateways once a CRL is published (`vtnctl crl publish`), put in\n"
    "VTN_TLS_CRL and the gateways reloaded (SIGHUP).\n"
    "\n"
    "  --cert F      the certificate (PEM); it must be signed by this CA\n"
    "  --serial HEX  or its serial number, as `vtnctl cert list` prints it\n"
    "  --reason R    unspecified (default), keyCompromise, affiliationChanged,\n"
    "                superseded, cessationOfOperation\n";

static int cmd_cert_revoke(int argc, char **argv)
{
    const char *ca_d = NULL, *cert_p = NULL, *serial_s = NULL, *reason_s = NULL;
    const opt opts[] = {{"ca-dir", 1, &ca_d, NULL},
                        {"cert", 1, &cert_p, NULL},
                        {"serial", 1, &serial_s, NULL},
                        {"reason", 1, &reason_s, NULL}};
    char err[512], serial[80];
    int reason = VTN_CRL_UNSPECIFIED;
    X509 *x = NULL;
    ca_dir ca;
    index_list l;
    index_entry *hit = NULL;

    if (want_help(argc, argv)) {
        fputs(cert_revoke_help, stdout);
        return 0;
    }
    parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0);
    need(ca_d, "ca-dir");
    if ((cert_p == NULL) == (serial_s == NULL))
        die_usage("give exactly one of --cert and --serial");
    if (reason_s != NULL && vtn_crl_reason_parse(reason_s, &reason) < 0)
        die_usage("--reason: \"%s\" is not a known reason", reason_s);

    ca_open(&ca, ca_d, 1);
    if (cert_p != NULL) {
        x = vtn_pki_read_cert(cert_p, err, sizeof(err));
        if (x == NULL)
            die("%s", err);
        if (!vtn_pki_issued_by(x, ca.cert))
            die("%s was not issued by the CA in %s", cert_p, ca_d);
        vtn_pki_serial_hex(x, serial, sizeof(serial));
    } else {
        size_t n = 0;
        for (const char *p = serial_s; *p != '\0' && n + 1 < sizeof(serial); p++) {
            if (*p == ':')
                continue;
            if (!isxdigit((unsigned char)*p))
                die_usage("--serial: \"%s\" is not hex", serial_s);
            serial[n++] = (char)toupper((unsigned char)*p);
        }
        serial[n] = '\0';
        /* the index has no leading zeros */
        while (serial[0] == '0' && serial[1] != '\0')
            memmove(serial, serial + 1, strlen(serial));
    }

    index_read(&ca, &l);
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.e[i].serial, serial) == 0)
            hit = &l.e[i];
    }
    if (hit == NULL && x == NULL)
        die("serial %s is not in %s", serial, ca.index_path);
    if (hit == NULL) {
        /* issued by this CA but missing from the index (restored from a backup?) */
        l.e = realloc(l.e, (l.n + 1) * sizeof(*l.e));
        if (l.e == NULL)
            die("out of memory");
        hit = &l.e[l.n++];
        entry_from_cert(x, hit);
    }
    if (hit->status == 'R') {
        printf("%s was already revoked at %s\n", serial, hit->revoked_at);
    } else {
        hit->status = 'R';
        iso_time(time(NULL), hit->revoked_at);
        snprintf(hit->reason, sizeof(hit->reason), "%s", vtn_crl_reason_name(reason));
        index_write(&ca, &l);
        printf("revoked %s (%s, fingerprint %s)\nnext: vtnctl crl publish --ca-dir %s --out "
               "FILE, then reload the gateways\n",
               serial, hit->subject, hit->fingerprint, ca_d);
    }
    free(l.e);
    X509_free(x);
    ca_close(&ca);
    return 0;
}

static const char cert_list_help[] =
    "usage: vtnctl cert list --ca-dir D\n"
    "\n"
    "Prints D's index: status (V valid, R revoked), serial, expiry, revocation\n"
    "time and reason, OpenADR fingerprint, subject; tab-separated.\n";

static int cmd_cert_list(int argc, char **argv)
{
    const char *ca_d = NULL;
    const opt opts[] = {{"ca-dir", 1, &ca_d, NULL}};
    ca_dir ca;
    index_list l;
    char line[2048];

    if (want_help(argc, argv)) {
        fputs(cert_list_help, stdout);
        return 0;
    }
    parse_opts(argc, argv, opts, 1, NULL, 0);
    need(ca_d, "ca-dir");
    ca_paths(&ca, ca_d);
    if (!exists(ca.cert_path))
        die("%s is not a CA directory (no ca.pem)", ca_d);
    index_read(&ca, &l);
    for (size_t i = 0; i < l.n; i++) {
        index_format(&l.e[i], line, sizeof(line));
        fputs(line, stdout);
    }
    free(l.e);
    return 0;
}

static const char crl_publish_help[] =
    "usage: vtnctl crl publish --ca-dir D --out F [--days N]\n"
    "\n"
    "Writes a CRL signed by the CA in D listing every revoked certificate in\n"
    "D's index, with the next CRL number, valid for N days (default 30). The\n"
    "file is replaced atomically, so a gateway reloading at that moment reads\n"
    "the old or the new CRL, never half of one. Publish again before it\n"
    "expires: a gateway refuses every VEN of a CA whose CRL has expired.\n";

static long long read_crlnumber(const ca_dir *ca)
{
    FILE *f = fopen(ca->crlnum_path, "r");
    long long n = 1;
    if (f == NULL) {
        if (errno != ENOENT)
            die("%s: %s", ca->crlnum_path, strerror(errno));
        return 1;
    }
    if (fscanf(f, "%lld", &n) != 1 || n < 1)
        die("%s: not a positive number", ca->crlnum_path);
    fclose(f);
    return n;
}

static int cmd_crl_publish(int argc, char **argv)
{
    const char *ca_d = NULL, *out = NULL, *days_s = NULL;
    const opt opts[] = {
        {"ca-dir", 1, &ca_d, NULL}, {"out", 1, &out, NULL}, {"days", 1, &days_s, NULL}};
    char err[512], next[32];
    ca_dir ca;
    index_list l;
    vtn_revoked *rev;
    size_t nrev = 0;

    if (want_help(argc, argv)) {
        fputs(crl_publish_help, stdout);
        return 0;
    }
    parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0);
    need(ca_d, "ca-dir");
    need(out, "out");
    long days = parse_days(days_s, CRL_DAYS_DEFAULT, "--days");

    ca_open(&ca, ca_d, 1);
    index_read(&ca, &l);
    rev = calloc(l.n + 1, sizeof(*rev));
    if (rev == NULL)
        die("out of memory");
    for (size_t i = 0; i < l.n; i++) {
        int reason = VTN_CRL_UNSPECIFIED;
        if (l.e[i].status != 'R')
            continue;
        rev[nrev].serial_hex = l.e[i].serial;
        rev[nrev].when = parse_iso(l.e[i].revoked_at);
        if (rev[nrev].when == (time_t)-1)
            die("%s: bad revocation time for %s", ca.index_path, l.e[i].serial);
        vtn_crl_reason_parse(l.e[i].reason, &reason);
        rev[nrev].reason = reason;
        nrev++;
    }
    long long number = read_crlnumber(&ca);
    X509_CRL *crl = vtn_pki_crl(ca.cert, ca.key, rev, nrev, number, days, err, sizeof(err));
    if (crl == NULL)
        die("%s", err);
    int rc = vtn_pki_write_crl(out, crl, 1);
    if (rc < 0)
        die("%s: %s", out, strerror(-rc));
    FILE *f = fopen(ca.crlnum_path, "w");
    if (f == NULL || fprintf(f, "%lld\n", number + 1) < 0 || fclose(f) != 0)
        die("%s: %s", ca.crlnum_path, strerror(errno));
    iso_time(time(NULL) + days * 86400L, next);
    printf("CRL %s: %zu revoked, number %lld, next update %s\n", out, nrev, number, next);
    X509_CRL_free(crl);
    free(rev);
    free(l.e);
    ca_close(&ca);
    return 0;
}

static const char fingerprint_help[] =
    "usage: vtnctl fingerprint FILE...\n"
    "\n"
    "Prints the OpenADR fingerprint (SHA-256 over the DER certificate, last 10\n"
    "bytes, e.g. 09:71:9E:0E:51:C0:8F:05:56:C9) of the first certificate in each\n"
    "PEM or DER FILE; with several files each line ends with the file name.\n";

static X509 *read_any_cert(const char *path)
{
    char err[512];
    FILE *f = fopen(path, "rb");
    X509 *x;

    if (f == NULL)
        die("%s: %s", path, strerror(errno));
    x = PEM_read_X509(f, NULL, NULL, NULL);
    if (x == NULL) {
        rewind(f);
        x = d2i_X509_fp(f, NULL);
    }
    fclose(f);
    if (x == NULL)
        die("%s", vtn_pki_errstr(err, sizeof(err), "no PEM or DER certificate in the file"));
    ERR_clear_error();
    return x;
}

static int cmd_fingerprint(int argc, char **argv)
{
    char *files[64];
    int n;

    if (want_help(argc, argv)) {
        fputs(fingerprint_help, stdout);
        return 0;
    }
    n = parse_opts(argc, argv, NULL, 0, files, 64);
    if (n == 0)
        die_usage("fingerprint: give a certificate file");
    for (int i = 0; i < n; i++) {
        char fp[VTN_FINGERPRINT_SIZE];
        X509 *x = read_any_cert(files[i]);
        if (vtn_fingerprint_x509(x, fp) < 0)
            die("%s: cannot encode the certificate", files[i]);
        if (n == 1)
            printf("%s\n", fp);
        else
            printf("%s  %s\n", fp, files[i]);
        X509_free(x);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * ticket-keys rotate
 * --------------------------------------------------------------------- */

#define TICKET_KEEP_DEFAULT 1
#define TICKET_KEYS_MAX 8 /* what a gateway reads */
#define TICKET_LINE_MAX 512

static const char ticket_keys_help[] =
    "usage: vtnctl ticket-keys rotate --file F [--keep N]\n"
    "\n"
    "Puts a new random session ticket key first in F, the file every gateway\n"
    "reads through VTN_TLS_TICKET_KEYS, keeps the N newest of its keys after it\n"
    "(default 1, at most 7) so that tickets issued under them still resume,\n"
    "and drops the others. Creates F when it does not exist. F is replaced\n"
    "atomically with mode 0600: the keys decrypt every session.\n"
    "\n"
    "Then give every gateway the new file and send them SIGHUP: a gateway\n"
    "encrypts with the first key and decrypts with all of them. Rotate again\n"
    "no sooner than the ticket lifetime (2 h) with --keep 1, so that no\n"
    "ticket still in use loses its key.\n";

static int cmd_ticket_keys_rotate(int argc, char **argv)
{
    const char *file = NULL, *keep_s = NULL;
    const opt opts[] = {{"file", 1, &file, NULL}, {"keep", 1, &keep_s, NULL}};
    char line[TICKET_LINE_MAX], old[TICKET_KEYS_MAX][2 * VTN_TLS_TICKET_KEY_LEN + 1], now[32];
    char text[TICKET_KEYS_MAX * (2 * VTN_TLS_TICKET_KEY_LEN + 2) + 256];
    unsigned char key[VTN_TLS_TICKET_KEY_LEN];
    size_t nold = 0, keep = TICKET_KEEP_DEFAULT, len;
    unsigned lineno = 0;
    FILE *f;
    int rc;

    if (want_help(argc, argv)) {
        fputs(ticket_keys_help, stdout);
        return 0;
    }
    parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0);
    need(file, "file");
    if (keep_s != NULL) {
        char *end;
        long v = strtol(keep_s, &end, 10);
        if (*keep_s == '\0' || *end != '\0' || v < 0 || v > TICKET_KEYS_MAX - 1)
            die_usage("--keep: \"%s\" is not a number from 0 to %d", keep_s, TICKET_KEYS_MAX - 1);
        keep = (size_t)v;
    }

    f = fopen(file, "r");
    if (f == NULL && errno != ENOENT)
        die("%s: %s", file, strerror(errno));
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f))
            die("%s: line %u is too long", file, lineno);
        if (vtn_tls_ticket_key_skip(line))
            continue;
        if (vtn_tls_ticket_key_parse(line, key) < 0)
            die("%s: line %u is not a ticket key (160 hex digits); not changed", file, lineno);
        if (nold < keep) {
            for (size_t i = 0; i < VTN_TLS_TICKET_KEY_LEN; i++)
                snprintf(old[nold] + 2 * i, 3, "%02x", key[i]);
            nold++;
        }
    }
    if (f != NULL)
        fclose(f);

    if (RAND_bytes(key, sizeof(key)) != 1)
        die("no random bytes for the key");
    iso_time(time(NULL), now);
    len = (size_t)snprintf(text, sizeof(text),
                           "# openvtn session ticket keys (VTN_TLS_TICKET_KEYS), rotated %s;\n"
                           "# the first encrypts new tickets, all decrypt\n",
                           now);
    for (size_t i = 0; i < VTN_TLS_TICKET_KEY_LEN; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%02x", key[i]);
    len += (size_t)snprintf(text + len, sizeof(text) - len, "\n");
    for (size_t i = 0; i < nold; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\n", old[i]);
    rc = vtn_pki_write_secret(file, text);
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_cleanse(old, sizeof(old));
    OPENSSL_cleanse(key, sizeof(key));
    if (rc < 0)
        die("%s: %s", file, strerror(-rc));
    printf("%s: a new key first, %zu older kept; give the file to every gateway, then SIGHUP "
           "them\n",
           file, nold);
    return 0;
}

/* ------------------------------------------------------------------------
 * Dispatch
 * --------------------------------------------------------------------- */

static const struct command {
    const char *group, *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"ca", "create", cmd_ca_create, "create a client CA (ECC P-256 or RSA 2048)"},
    {"cert", "issue", cmd_cert_issue, "generate a key and certificate, print the fingerprint"},
    {"cert", "sign-csr", cmd_cert_sign_csr, "sign a certificate request"},
    {"cert", "revoke", cmd_cert_revoke, "revoke a certificate in the CA's index"},
    {"cert", "list", cmd_cert_list, "list issued and revoked certificates"},
    {"crl", "publish", cmd_crl_publish, "write the CA's CRL"},
    {"fingerprint", NULL, cmd_fingerprint, "print a certificate's OpenADR fingerprint"},
    {"ticket-keys", "rotate", cmd_ticket_keys_rotate,
     "new session ticket key first in the gateways' key file"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: vtnctl COMMAND [OPTIONS]   (vtnctl COMMAND --help for details)\n\n"
                 "The openvtn PKI tool: client CAs, VEN and server certificates, CRLs,\n"
                 "session ticket keys.\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s%s", commands[i].group, commands[i].name ? " " : "",
                 commands[i].name ? commands[i].name : "");
        fprintf(out, "  %-20s %s\n", name, commands[i].summary);
    }
    fprintf(out, "\nExit status: 0 done, 1 failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vtnctl %s\n", VTN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[1], c->group) != 0)
            continue;
        if (c->name == NULL)
            return c->fn(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], c->name) == 0)
            return c->fn(argc - 3, argv + 3);
    }
    /* a known group with a missing or unknown subcommand */
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].group) == 0) {
            if (argc >= 3 && strcmp(argv[2], "--help") == 0) {
                usage(stdout);
                return 0;
            }
            die_usage("%s: unknown or missing subcommand%s%s", argv[1], argc >= 3 ? " " : "",
                      argc >= 3 ? argv[2] : "");
        }
    }
    die_usage("unknown command \"%s\"", argv[1]);
}
