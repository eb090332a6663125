/* The operator console's static files under /ui/ on the management
 * listener (docs/ui.md). They are read into memory once at start, so a
 * request never touches the file system: a path is looked up by exact name
 * in a sorted table, which leaves nothing for "..", encoded dots or
 * symbolic links to reach. No token is needed for these files; the data
 * the console shows comes from /api/v1 with the token. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_internal.h"
#include "vtn/log.h"

#define UI_MAX_FILES 1024 /* a Vite build has a handful */
#define UI_MAX_DEPTH 8
#define UI_NAME_MAX 255

/* Every answer of a file: the page may load only what this origin serves
 * (no inline script or style, no other host), may not be framed, and its
 * types are not sniffed. */
#define UI_SECURITY                                                                                \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "               \
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"                              \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "X-Frame-Options: DENY\r\n"

/* assets/ holds the build's content-hashed names: a new build has new
 * names, so a cached one never goes stale. Everything else (index.html
 * first) is checked again on every load. */
static const char hdr_immutable[] =
    "Cache-Control: public, max-age=31536000, immutable\r\n" UI_SECURITY;
static const char hdr_no_cache[] = "Cache-Control: no-cache\r\n" UI_SECURITY;

static const struct {
    const char *ext;
    const char *type;
} ui_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"webp", "image/webp"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
};

const char *gw_ui_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof ui_types / sizeof ui_types[0]; i++)
            if (strcmp(dot + 1, ui_types[i].ext) == 0)
                return ui_types[i].type;
    return "application/octet-stream";
}

static int file_cmp(const void *a, const void *b)
{
    return strcmp(((const gw_ui_file *)a)->path, ((const gw_ui_file *)b)->path);
}

/* Names the table may hold: what a build writes, nothing that needs
 * quoting or could mean something to a path. */
static int name_ok(const char *n)
{
    if (!n[0] || n[0] == '.')
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_' || *p == '~'))
            return 0;
    return 1;
}

typedef struct ui_load {
    gw_ui *ui;
    size_t cap;
    size_t max_bytes;
    char *err;
    size_t errlen;
} ui_load;

static int add_file(ui_load *L, int dirfd, const char *name, const char *rel, off_t size)
{
    gw_ui *ui = L->ui;
    if (ui->n >= UI_MAX_FILES) {
        snprintf(L->err, L->errlen, "more than %d files", UI_MAX_FILES);
        return -EFBIG;
    }
    if ((size_t)size > L->max_bytes || ui->bytes + (size_t)size > L->max_bytes) {
        snprintf(L->err, L->errlen, "the files pass VTN_UI_MAX_BYTES (%zu bytes) at %s",
                 L->max_bytes, rel);
        return -EFBIG;
    }
    if (ui->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 16;
        gw_ui_file *v = realloc(ui->files, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        ui->files = v;
        L->cap = cap;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(L->err, L->errlen, "%s: %s", rel, strerror(errno));
        return -errno;
    }
    gw_ui_file *f = &ui->files[ui->n];
    memset(f, 0, sizeof *f);
    f->path = strdup(rel);
    f->data = malloc((size_t)size + 1);
    size_t got = 0;
    while (f->path && f->data && got < (size_t)size) {
        ssize_t r = read(fd, f->data + got, (size_t)size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!f->path || !f->data || got != (size_t)size) {
        free(f->path);
        free(f->data);
        snprintf(L->err, L->errlen, "%s: %s", rel, f->data ? "short read" : "out of memory");
        return f->data ? -EIO : -ENOMEM;
    }
    f->len = got;
    f->ctype = gw_ui_content_type(rel);
    f->headers = strncmp(rel, "assets/", 7) == 0 ? hdr_immutable : hdr_no_cache;
    ui->bytes += got;
    ui->n++;
    return 0;
}

/* Regular files under fd (a directory, closed here), recursively; dot files, symbolic links and
 * names outside name_ok are left out (said in the log). */
static int walk(ui_load *L, int fd, const char *prefix, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char rel[UI_NAME_MAX * 2];
        int n = snprintf(rel, sizeof rel, "%s%s", prefix, e->d_name);
        struct stat st;
        if (n < 0 || (size_t)n >= sizeof rel || !name_ok(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            if (e->d_name[0] != '.')
                vtn_warn("ui_skipped",
                         "file=\"%.200s\" msg=\"not a plain file or directory "
                         "with a plain name\"",
                         e->d_name);
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            rc = add_file(L, dirfd(d), e->d_name, rel, st.st_size);
            continue;
        }
        if (depth >= UI_MAX_DEPTH) {
            snprintf(L->err, L->errlen, "directories nested deeper than %d at %s", UI_MAX_DEPTH,
                     rel);
            rc = -ELOOP;
            break;
        }
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            snprintf(L->err, L->errlen, "%s: %s", rel, strerror(errno));
            rc = -errno;
            break;
        }
        char pre[UI_NAME_MAX * 2 + 1];
        snprintf(pre, sizeof pre, "%s/", rel);
        rc = walk(L, sub, pre, depth + 1);
    }
    closedir(d);
    return rc;
}

int gw_ui_load(gw_ui *ui, const char *dir, size_t max_bytes, char *err, size_t errlen)
{
    memset(ui, 0, sizeof *ui);
    if (!dir || !*dir) {
        snprintf(err, errlen, "VTN_UI_DIR is empty");
        return -ENOENT;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(e));
        return -e;
    }
    ui_load L = {ui, 0, max_bytes, err, errlen};
    int rc = walk(&L, fd, "", 0);
    if (rc == 0) {
        qsort(ui->files, ui->n, sizeof *ui->files, file_cmp);
        gw_ui_file key = {.path = "index.html"};
        ui->index = bsearch(&key, ui->files, ui->n, sizeof *ui->files, file_cmp);
        if (!ui->index) {
            snprintf(err, errlen, "%s has no index.html", dir);
            rc = -ENOENT;
        }
    }
    if (rc != 0)
        gw_ui_free(ui);
    return rc;
}

void gw_ui_free(gw_ui *ui)
{
    for (size_t i = 0; i < ui->n; i++) {
        free(ui->files[i].path);
        free(ui->files[i].data);
    }
    free(ui->files);
    memset(ui, 0, sizeof *ui);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The path after "/ui/", percent-decoded into out. -1 for what no file or
 * page of the console has: a bad escape, a NUL or control byte, a
 * backslash, an empty or dot segment ("//", "/./", "/../", encoded or
 * not), or more than outlen - 1 bytes. */
static int decode_rel(const char *p, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || c == '\\' || o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    /* segments: none empty (but a trailing '/'), none "." or ".." */
    for (size_t s = 0; s < o;) {
        size_t e = s;
        while (e < o && out[e] != '/')
            e++;
        size_t len = e - s;
        if ((len == 0 && e < o) || (len == 1 && out[s] == '.') ||
            (len == 2 && out[s] == '.' && out[s + 1] == '.'))
            return -1;
        s = e + 1;
    }
    return (int)o;
}

void gw_ui_answer_for(const gw_ui *ui, int method, const char *path, size_t n, gw_ui_answer *out)
{
    memset(out, 0, sizeof *out);
    size_t plen = 0; /* without query or fragment */
    while (plen < n && path[plen] != '?' && path[plen] != '#')
        plen++;
    if (method != HTTP_GET && method != HTTP_HEAD) {
        out->status = 405;
        out->extra = "Allow: GET, HEAD\r\n";
        out->text = "method not allowed: the console's files take GET and HEAD";
        return;
    }
    if (plen <= 3) { /* "/ui": relative links inside the app need the slash */
        out->status = 301;
        out->extra = "Location: /ui/\r\n";
        out->text = "moved to /ui/";
        return;
    }
    if (!ui || !ui->index) {
        out->status = 404;
        out->text = "the console is not installed on this gateway (see VTN_UI_DIR)";
        return;
    }
    char rel[GW_UI_PATH_MAX];
    int rn = decode_rel(path + 4, plen - 4, rel, sizeof rel);
    if (rn < 0) {
        out->status = 404;
        out->text = "not found";
        return;
    }
    const gw_ui_file *f = ui->index;
    if (rn > 0) {
        gw_ui_file key = {.path = rel};
        const gw_ui_file *hit = bsearch(&key, ui->files, ui->n, sizeof *ui->files, file_cmp);
        if (hit)
            f = hit;
        else {
            /* a name with an extension is a file that is not there (a stale
             * asset must not get the page in its place); anything else is
             * one of the app's own routes, which index.html draws */
            const char *last = strrchr(rel, '/');
            if (strchr(last ? last + 1 : rel, '.') || !strncmp(rel, "assets/", 7)) {
                out->status = 404;
                out->text = "not found";
                return;
            }
        }
    }
    out->status = 200;
    out->file = f;
    out->ctype = f->ctype;
    out->extra = f->headers;
}
