/* Hardened libxml2 parsing and XSD validation; see vtn/xml.h. */
#include "vtn/xml.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/dict.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

/* Safe options only: no entity substitution (NOENT), no DTD loading or
 * default attributes (DTDLOAD/DTDATTR), no XInclude, no lifting of the
 * built-in size limits (HUGE). CDATA sections become plain text so the text
 * helpers and the validator see one text node; COMPACT and BIG_LINES only
 * save memory and keep line numbers past 65535 right. */
#define VTN_XML_PARSE_OPTIONS                                                                      \
    (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_COMPACT | XML_PARSE_BIG_LINES)

/* The per-thread parser context keeps a dictionary of every element and
 * attribute name it has seen; a peer sending random names would grow it
 * without end, so the context is rebuilt past this many entries. */
#define VTN_XML_DICT_MAX 20000

struct vtn_xml_schema {
    xmlSchemaPtr schema;
};

struct vtn_xml_ctx {
    const vtn_xml_schema *schema;
    xmlParserCtxtPtr pctxt; /* reused between documents: saves its set-up per parse */
    xmlSchemaValidCtxtPtr vctxt;
    size_t max_bytes;
    int stopped; /* our own SAX hook halted the parser */
    int utf8;    /* the pre-scan's verdict: bytes, UTF-8 (or no encoding declared) */
    int nerr;
    char err[VTN_XML_ERR_MAX];
};

/* ---- error capture ------------------------------------------------------ */

static void set_err(char *err, size_t errlen, int *nerr, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Keeps the first error only: later ones are usually consequences of it. */
static void set_err(char *err, size_t errlen, int *nerr, int line, const char *fmt, ...)
{
    if (*nerr)
        return;
    *nerr = 1;
    size_t off = 0;
    if (line > 0) {
        int w = snprintf(err, errlen, "line %d: ", line);
        off = w > 0 && (size_t)w < errlen ? (size_t)w : 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + off, errlen - off, fmt, ap);
    va_end(ap);
    /* libxml2 messages end with a newline and sometimes contain more. */
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t n = strlen(err);
    while (n > 0 && err[n - 1] == ' ')
        err[--n] = '\0';
}

static void record_xml_error(char *err, size_t errlen, int *nerr, const xmlError *e)
{
    if (e == NULL || e->level < XML_ERR_ERROR) /* warnings (e.g. relative ns URIs) are fine */
        return;
    set_err(err, errlen, nerr, e->line, "%s", e->message ? e->message : "XML error");
}

static void ctx_structured_error(void *data, xmlErrorPtr e)
{
    /* For the parser, libxml2 passes ctxt->userData (the parser context). */
    vtn_xml_ctx *c = data;
    record_xml_error(c->err, sizeof c->err, &c->nerr, e);
}

static void parser_structured_error(void *data, xmlErrorPtr e)
{
    xmlParserCtxtPtr p = data;
    vtn_xml_ctx *c = p ? p->_private : NULL;
    if (c)
        record_xml_error(c->err, sizeof c->err, &c->nerr, e);
}

typedef struct err_sink {
    char *err;
    size_t errlen;
    int nerr;
} err_sink;

static void sink_structured_error(void *data, xmlErrorPtr e)
{
    err_sink *s = data;
    if (s->err && s->errlen)
        record_xml_error(s->err, s->errlen, &s->nerr, e);
}

static void silent_generic_error(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void silent_structured_error(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    (void)e;
}

/* ---- process-wide set-up ------------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    xmlInitParser();
    /* libxml2's error globals are per thread; the ThrDef setters give every
     * new thread the silent defaults, the plain ones cover this thread.
     * Errors are captured per call through the contexts instead. */
    xmlThrDefSetGenericErrorFunc(NULL, silent_generic_error);
    xmlThrDefSetStructuredErrorFunc(NULL, silent_structured_error);
    xmlSetGenericErrorFunc(NULL, silent_generic_error);
    xmlSetStructuredErrorFunc(NULL, silent_structured_error);
}

void vtn_xml_global_init(void)
{
    pthread_once(&g_once, global_init_once);
}

static xmlParserInputPtr deny_all_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url;
    (void)id;
    (void)ctxt;
    return NULL; /* the caller reports "failed to load external entity" */
}

void vtn_xml_lockdown(void)
{
    vtn_xml_global_init();
    xmlSetExternalEntityLoader(deny_all_loader);
}

/* ---- schema compilation ------------------------------------------------- */

/* The loader used while a schema set compiles; schema compilation happens
 * at start, single-threaded, so plain statics are enough. */
static const vtn_xml_file *g_mem_files;
static size_t g_mem_nfiles;
static char g_file_dir[1024];

static const char *base_name(const char *url)
{
    const char *s = strrchr(url, '/');
    return s ? s + 1 : url;
}

static xmlParserInputPtr memory_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)id;
    if (url == NULL)
        return NULL;
    const char *name = base_name(url);
    for (size_t i = 0; i < g_mem_nfiles; i++) {
        if (strcmp(g_mem_files[i].name, name) != 0)
            continue;
        if (g_mem_files[i].len > INT_MAX)
            return NULL;
        /* A copy: 2.9.14's static input buffers garble documents larger
         * than one read chunk (the parser saw oadr.xsd twice over). */
        xmlParserInputBufferPtr buf = xmlParserInputBufferCreateMem(
            (const char *)g_mem_files[i].data, (int)g_mem_files[i].len, XML_CHAR_ENCODING_NONE);
        if (buf == NULL)
            return NULL;
        xmlParserInputPtr in = xmlNewIOInputStream(ctxt, buf, XML_CHAR_ENCODING_NONE);
        if (in == NULL) {
            xmlFreeParserInputBuffer(buf);
            return NULL;
        }
        /* The URL is the base against which its own imports resolve. */
        in->filename = (char *)xmlStrdup((const xmlChar *)url);
        return in;
    }
    return NULL;
}

/* Reads only files directly inside g_file_dir (the directory of the schema
 * being compiled) and never the network. */
static xmlParserInputPtr dir_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    if (url == NULL)
        return NULL;
    const char *path = url;
    if (strncmp(path, "file://", 7) == 0)
        path += 7;
    size_t dl = strlen(g_file_dir);
    if (strncmp(path, g_file_dir, dl) != 0 || path[dl] != '/' || strchr(path + dl + 1, '/') ||
        strstr(path, ".."))
        return NULL;
    return xmlNoNetExternalEntityLoader(path, id, ctxt);
}

static int compile_schema(xmlSchemaParserCtxtPtr pc, vtn_xml_schema **out, char *err, size_t errlen)
{
    err_sink sink = {err, errlen, 0};
    if (pc == NULL)
        return -ENOMEM;
    xmlSchemaSetParserStructuredErrors(pc, sink_structured_error, &sink);
    xmlSchemaPtr s = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    if (s == NULL) {
        if (!sink.nerr && err && errlen)
            snprintf(err, errlen, "schema did not compile");
        return -EINVAL;
    }
    vtn_xml_schema *r = calloc(1, sizeof *r);
    if (r == NULL) {
        xmlSchemaFree(s);
        return -ENOMEM;
    }
    r->schema = s;
    *out = r;
    return 0;
}

int vtn_xml_schema_from_memory(const vtn_xml_file *files, size_t nfiles, const char *main_name,
                               vtn_xml_schema **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    vtn_xml_global_init();
    int found = 0;
    for (size_t i = 0; i < nfiles; i++)
        found |= strcmp(files[i].name, main_name) == 0;
    if (!found) {
        if (err && errlen)
            snprintf(err, errlen, "schema %s is not in the embedded table", main_name);
        return -EINVAL;
    }
    char url[256];
    /* A made-up absolute URL: relative imports resolve against it and the
     * memory loader serves them by file name. */
    snprintf(url, sizeof url, "vtn-embedded:///schemas/%s", main_name);
    xmlExternalEntityLoader prev = xmlGetExternalEntityLoader();
    g_mem_files = files;
    g_mem_nfiles = nfiles;
    xmlSetExternalEntityLoader(memory_loader);
    int rc = compile_schema(xmlSchemaNewParserCtxt(url), out, err, errlen);
    xmlSetExternalEntityLoader(prev);
    g_mem_files = NULL;
    g_mem_nfiles = 0;
    return rc;
}

int vtn_xml_schema_from_file(const char *path, vtn_xml_schema **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    vtn_xml_global_init();
    char *abs = realpath(path, NULL);
    if (abs == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -EINVAL;
    }
    const char *slash = strrchr(abs, '/');
    size_t dl = (size_t)(slash - abs);
    if (dl >= sizeof g_file_dir) {
        free(abs);
        return -EINVAL;
    }
    memcpy(g_file_dir, abs, dl);
    g_file_dir[dl] = '\0';
    xmlExternalEntityLoader prev = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(dir_loader);
    int rc = compile_schema(xmlSchemaNewParserCtxt(abs), out, err, errlen);
    xmlSetExternalEntityLoader(prev);
    g_file_dir[0] = '\0';
    free(abs);
    return rc;
}

void vtn_xml_schema_free(vtn_xml_schema **s)
{
    if (s == NULL || *s == NULL)
        return;
    xmlSchemaFree((*s)->schema);
    free(*s);
    *s = NULL;
}

/* ---- per-thread context ------------------------------------------------- */

static void hook_internal_subset(void *data, const xmlChar *name, const xmlChar *ext_id,
                                 const xmlChar *sys_id)
{
    (void)name;
    (void)ext_id;
    (void)sys_id;
    /* Stop before the internal subset is read: no entity declaration (a
     * billion laughs, an external entity) is even parsed. */
    xmlParserCtxtPtr p = data;
    vtn_xml_ctx *c = p->_private;
    c->stopped = 1;
    set_err(c->err, sizeof c->err, &c->nerr, xmlSAX2GetLineNumber(p),
            "DOCTYPE is not allowed in OpenADR messages");
    xmlStopParser(p);
}

/* ---- pre-scan ------------------------------------------------------------
 *
 * One pass over the raw document, before libxml2 sees it, that counts what
 * costs libxml2 2.9.14 more than linear time or memory (attributes and
 * namespace declarations on one element, elements, text) against the caps
 * in vtn/xml.h. It reads XML's lexical structure only: markup starts at
 * '<' (start and end tags, comments, CDATA sections, processing
 * instructions), attribute values are quoted and hold no '<'. libxml2 keeps
 * scanning after a well-formedness error (with its tree builder off), so
 * the pre-scan never gives up half way: markup it cannot read is refused
 * here, and every byte it accepts it has counted. ASCII-compatible encodings
 * are read byte by byte, UTF-16 by 16-bit unit; any other encoding is
 * refused, since '<' would not be the byte the scan looks for. */

typedef struct scan {
    const unsigned char *p;
    size_t n; /* units */
    int wide; /* 0: bytes, 1: UTF-16LE, 2: UTF-16BE */
    size_t i; /* the unit being read */
    vtn_xml_ctx *c;
    int utf8; /* out: bytes, and no encoding declared other than UTF-8 */
} scan;

static inline unsigned at(const scan *s, size_t i)
{
    if (i >= s->n)
        return 0; /* no NUL reaches the scan: it stands for the end */
    if (!s->wide)
        return s->p[i];
    const unsigned char *q = s->p + 2 * i;
    return s->wide == 1 ? (unsigned)(q[0] | q[1] << 8) : (unsigned)(q[0] << 8 | q[1]);
}

static int is_space(unsigned ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Refuses the document with "line N: <why>", N counted only now. */
static int scan_fail(scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int scan_fail(scan *s, const char *fmt, ...)
{
    int line = 1;
    for (size_t k = 0; k < s->i && k < s->n; k++)
        line += at(s, k) == '\n';
    char why[VTN_XML_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    set_err(s->c->err, sizeof s->c->err, &s->c->nerr, line, "%s", why);
    return -EBADMSG;
}

/* Index of the first unit at or after from that starts lit, or s->n. */
static size_t find(const scan *s, size_t from, const char *lit)
{
    size_t m = strlen(lit);
    if (!s->wide) {
        for (size_t k = from; k + m <= s->n;) {
            const unsigned char *hit = memchr(s->p + k, lit[0], s->n - k);
            if (hit == NULL)
                break;
            k = (size_t)(hit - s->p);
            if (k + m <= s->n && memcmp(hit, lit, m) == 0)
                return k;
            k++;
        }
        return s->n;
    }
    for (size_t k = from; k + m <= s->n; k++) {
        size_t j = 0;
        while (j < m && at(s, k + j) == (unsigned char)lit[j])
            j++;
        if (j == m)
            return k;
    }
    return s->n;
}

static int starts(const scan *s, size_t i, const char *lit)
{
    for (size_t j = 0; lit[j]; j++)
        if (at(s, i + j) != (unsigned char)lit[j])
            return 0;
    return 1;
}

/* Moves past a name: everything up to white space, markup or a quote
 * (libxml2 checks the characters; only where the name ends matters here). */
static void skip_name(scan *s)
{
    static const unsigned char stop[256] = {
        [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['='] = 1, ['>'] = 1,
        ['/'] = 1, ['<'] = 1,  ['"'] = 1,  ['\''] = 1, ['?'] = 1,
    };
    if (!s->wide) {
        while (s->i < s->n && !stop[s->p[s->i]])
            s->i++;
        return;
    }
    unsigned ch;
    while (s->i < s->n && ((ch = at(s, s->i)) > 255 || !stop[ch]))
        s->i++;
}

/* Index of the first unit in [from, to) that is ch, or to. */
static size_t find_unit(const scan *s, size_t from, size_t to, unsigned char ch)
{
    if (!s->wide) {
        const unsigned char *hit = from < to ? memchr(s->p + from, ch, to - from) : NULL;
        return hit ? (size_t)(hit - s->p) : to;
    }
    while (from < to && at(s, from) != ch)
        from++;
    return from;
}

/* Copies a name for an error message: printable ASCII only, at most 64. */
static void name_for_error(const scan *s, size_t from, size_t to, char *out, size_t outlen)
{
    size_t k = 0;
    for (size_t j = from; j < to && k + 1 < outlen && k < 64; j++) {
        unsigned ch = at(s, j);
        out[k++] = ch > ' ' && ch < 127 ? (char)ch : '?';
    }
    out[k] = '\0';
}

static int encoding_is_ascii_compatible(const char *e)
{
    static const char *const ok[] = {"UTF-8",     "UTF8",   "US-ASCII",   "ASCII",
                                     "ISO-8859-", "LATIN1", "WINDOWS-125"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t m = strlen(ok[i]);
        if (strncasecmp(e, ok[i], m) == 0 &&
            (ok[i][m - 1] == '-' || ok[i][m - 1] == '5' || e[m] == '\0'))
            return 1;
    }
    return 0;
}

typedef struct tag_counts {
    unsigned attrs, ns;
    char encoding[32]; /* of an XML declaration */
} tag_counts;

/* Reads the attributes of a start tag or of the XML declaration, from s->i
 * up to (not past) the tag's end. */
static int scan_attributes(scan *s, tag_counts *t, int is_decl, unsigned long *attrs_total,
                           unsigned *ns_total, size_t name_from, size_t name_to)
{
    char name[80];
    for (;;) {
        size_t i0 = s->i;
        while (is_space(at(s, s->i)))
            s->i++;
        unsigned ch = at(s, s->i);
        if (ch == '>' || ch == '/' || ch == '?' || s->i >= s->n)
            return 0;
        if (s->i == i0)
            return scan_fail(s, "attributes must be separated by white space");
        size_t a0 = s->i;
        skip_name(s);
        size_t a1 = s->i;
        if (a1 == a0)
            return scan_fail(s, "malformed attribute");
        while (is_space(at(s, s->i)))
            s->i++;
        if (at(s, s->i) != '=')
            return scan_fail(s, "attribute without a value");
        s->i++;
        while (is_space(at(s, s->i)))
            s->i++;
        unsigned q = at(s, s->i);
        if (q != '"' && q != '\'')
            return scan_fail(s, "attribute value without quotes");
        size_t v0 = ++s->i;
        s->i = find_unit(s, v0, s->n, (unsigned char)q);
        if (s->i >= s->n)
            return scan_fail(s, "unterminated attribute value");
        size_t lt = find_unit(s, v0, s->i, '<');
        if (lt < s->i) {
            s->i = lt;
            return scan_fail(s, "'<' in an attribute value");
        }
        size_t v1 = s->i++;
        if (v1 - v0 > VTN_XML_MAX_TEXT)
            return scan_fail(s, "attribute value longer than %u bytes", VTN_XML_MAX_TEXT);
        if (is_decl) {
            if (a1 - a0 == 8 && starts(s, a0, "encoding")) {
                name_for_error(s, v0, v1, t->encoding, sizeof t->encoding);
                if (v1 - v0 >= sizeof t->encoding)
                    t->encoding[0] = '?'; /* too long to be a name we accept */
            }
            continue;
        }
        int is_ns = starts(s, a0, "xmlns") && (a1 - a0 == 5 || at(s, a0 + 5) == ':');
        if (is_ns ? (++t->ns > VTN_XML_MAX_NS || ++*ns_total > VTN_XML_MAX_NS_TOTAL)
                  : (++t->attrs > VTN_XML_MAX_ATTRS || ++*attrs_total > VTN_XML_MAX_ATTRS_TOTAL)) {
            name_for_error(s, name_from, name_to, name, sizeof name);
            if (is_ns)
                return t->ns > VTN_XML_MAX_NS
                           ? scan_fail(s, "element %s declares more than %d namespaces", name,
                                       VTN_XML_MAX_NS)
                           : scan_fail(s, "more than %d namespace declarations in the document",
                                       VTN_XML_MAX_NS_TOTAL);
            return t->attrs > VTN_XML_MAX_ATTRS
                       ? scan_fail(s, "element %s has more than %d attributes", name,
                                   VTN_XML_MAX_ATTRS)
                       : scan_fail(s, "more than %d attributes in the document",
                                   VTN_XML_MAX_ATTRS_TOTAL);
        }
    }
}

/* <?xml ...?> at the very start: only its encoding matters here. */
static int scan_declaration(scan *s)
{
    tag_counts t = {0};
    s->i += 5;
    if (scan_attributes(s, &t, 1, NULL, NULL, 0, 0) < 0)
        return -EBADMSG;
    if (!starts(s, s->i, "?>"))
        return scan_fail(s, "malformed XML declaration");
    s->i += 2;
    if (t.encoding[0] && !s->wide && !encoding_is_ascii_compatible(t.encoding))
        return scan_fail(s, "encoding %s is not accepted (use UTF-8)", t.encoding);
    if (t.encoding[0] && strcasecmp(t.encoding, "UTF-8") != 0 &&
        strcasecmp(t.encoding, "UTF8") != 0)
        s->utf8 = 0;
    return 0;
}

static int prescan(vtn_xml_ctx *c, const char *data, size_t len)
{
    scan s = {(const unsigned char *)data, len, 0, 0, c, 0};
    const unsigned char *p = s.p;
    if (len >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == '<' && p[1] == 0)))
        s.wide = 1;
    else if (len >= 2 && ((p[0] == 0xfe && p[1] == 0xff) || (p[0] == 0 && p[1] == '<')))
        s.wide = 2;
    s.utf8 = !s.wide;
    if (s.wide) {
        s.n = len / 2;
        s.i = at(&s, 0) == 0xfeff;
    } else if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
        s.i = 3;
    }
    if (starts(&s, s.i, "<?xml") && (is_space(at(&s, s.i + 5)) || at(&s, s.i + 5) == '?') &&
        scan_declaration(&s) < 0)
        return -EBADMSG;
    while (is_space(at(&s, s.i)))
        s.i++;
    if (at(&s, s.i) != '<')
        return scan_fail(&s, "a document starts with '<'");

    unsigned long elements = 0, attrs_total = 0;
    unsigned ns_total = 0;
    int depth = 0;
    size_t text = 0; /* units of text since the last tag */
    char name[80];
    while (s.i < s.n) {
        if (at(&s, s.i) != '<') {
            size_t lt = find_unit(&s, s.i, s.n, '<');
            text += lt - s.i;
            s.i = lt;
            if (text > VTN_XML_MAX_TEXT)
                return scan_fail(&s, "text longer than %u bytes", VTN_XML_MAX_TEXT);
            continue;
        }
        unsigned next = at(&s, s.i + 1);
        if (next == '?' && starts(&s, s.i, "<?xml") &&
            (is_space(at(&s, s.i + 5)) || at(&s, s.i + 5) == '?')) {
            /* libxml2 reads a misplaced one as a declaration all the same. */
            return scan_fail(&s, "XML declaration not at the start of the document");
        } else if (next == '?' || starts(&s, s.i, "<!--")) {
            const char *end = next == '?' ? "?>" : "-->";
            size_t e = find(&s, s.i + (next == '?' ? 2 : 4), end); /* "<!-->" opens one */
            if (e >= s.n)
                return scan_fail(&s, "unterminated %s",
                                 next == '?' ? "processing instruction" : "comment");
            s.i = e + strlen(end);
        } else if (starts(&s, s.i, "<![CDATA[")) {
            size_t e = find(&s, s.i + 9, "]]>");
            if (e >= s.n)
                return scan_fail(&s, "unterminated CDATA section");
            text += e - (s.i + 9);
            s.i = e + 3;
            if (text > VTN_XML_MAX_TEXT)
                return scan_fail(&s, "text longer than %u bytes", VTN_XML_MAX_TEXT);
        } else if (next == '!') {
            if (starts(&s, s.i, "<!DOCTYPE"))
                return scan_fail(&s, "DOCTYPE is not allowed in OpenADR messages");
            return scan_fail(&s, "'<!' that starts no comment or CDATA section");
        } else if (next == '/') {
            s.i += 2;
            skip_name(&s);
            while (is_space(at(&s, s.i)))
                s.i++;
            if (at(&s, s.i) != '>')
                return scan_fail(&s, "malformed end tag");
            s.i++;
            depth -= depth > 0; /* a stray end tag is libxml2's to report */
            text = 0;
        } else {
            size_t n0 = ++s.i;
            skip_name(&s);
            size_t n1 = s.i;
            if (n1 == n0)
                return scan_fail(&s, "'<' not followed by an element name");
            if (++elements > VTN_XML_MAX_ELEMENTS)
                return scan_fail(&s, "more than %d elements in the document", VTN_XML_MAX_ELEMENTS);
            tag_counts t = {0};
            if (scan_attributes(&s, &t, 0, &attrs_total, &ns_total, n0, n1) < 0)
                return -EBADMSG;
            if (starts(&s, s.i, "/>")) {
                s.i += 2;
            } else if (at(&s, s.i) == '>') {
                s.i++;
                if (++depth > VTN_XML_MAX_DEPTH)
                    return scan_fail(&s, "elements nested deeper than %d levels",
                                     VTN_XML_MAX_DEPTH);
            } else {
                name_for_error(&s, n0, n1, name, sizeof name);
                return scan_fail(&s, "malformed start tag %s", name);
            }
            text = 0;
        }
    }
    c->utf8 = s.utf8;
    return 0;
}

static int ctx_new_parser(vtn_xml_ctx *c)
{
    xmlParserCtxtPtr p = xmlNewParserCtxt();
    if (p == NULL)
        return -ENOMEM;
    p->_private = c;
    p->sax->serror = parser_structured_error;
    p->sax->internalSubset = hook_internal_subset;
    if (c->pctxt)
        xmlFreeParserCtxt(c->pctxt); /* documents keep their own reference to the dict */
    c->pctxt = p;
    return 0;
}

vtn_xml_ctx *vtn_xml_ctx_new(const vtn_xml_schema *schema)
{
    vtn_xml_global_init();
    vtn_xml_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->schema = schema;
    c->max_bytes = VTN_XML_DEFAULT_MAX_BYTES;
    if (ctx_new_parser(c) != 0)
        goto fail;
    if (schema) {
        c->vctxt = xmlSchemaNewValidCtxt(schema->schema);
        if (c->vctxt == NULL)
            goto fail;
        xmlSchemaSetValidStructuredErrors(c->vctxt, ctx_structured_error, c);
    }
    return c;
fail:
    vtn_xml_ctx_free(&c);
    return NULL;
}

void vtn_xml_ctx_free(vtn_xml_ctx **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    vtn_xml_ctx *c = *cp;
    if (c->vctxt)
        xmlSchemaFreeValidCtxt(c->vctxt);
    if (c->pctxt)
        xmlFreeParserCtxt(c->pctxt);
    free(c);
    *cp = NULL;
}

void vtn_xml_ctx_set_max_bytes(vtn_xml_ctx *c, size_t max)
{
    c->max_bytes = max < INT_MAX ? max : INT_MAX;
}

const char *vtn_xml_error(const vtn_xml_ctx *c)
{
    return c->err;
}

static void reset_err(vtn_xml_ctx *c)
{
    c->nerr = 0;
    c->err[0] = '\0';
}

/* The parse of xmlCtxtReadMemory (reset, one memory input, the options,
 * xmlParseDocument) with one change: the input has no read callback. libxml2
 * 2.9's memory input keeps one (it reads nothing), so the parser tries to
 * grow the buffer at every GROW: 7,700 of the 37,600 instructions of a
 * bench oadrPoll's parse; without it libxml2 treats the input as complete
 * ("don't grow memory buffers"). UTF-8 only: a declared encoding or a UTF-16 BOM puts a
 * converter on the input, which is fed through that callback. */
static xmlDocPtr read_utf8(vtn_xml_ctx *c, const char *data, size_t len)
{
    xmlParserCtxtPtr p = c->pctxt;
    xmlCtxtReset(p);
    xmlParserInputBufferPtr in =
        xmlParserInputBufferCreateMem(data, (int)len, XML_CHAR_ENCODING_NONE);
    if (in == NULL)
        return NULL;
    in->readcallback = NULL;
    xmlParserInputPtr st = xmlNewIOInputStream(p, in, XML_CHAR_ENCODING_NONE);
    if (st == NULL) {
        xmlFreeParserInputBuffer(in);
        return NULL;
    }
    if (inputPush(p, st) < 0) /* it freed st */
        return NULL;
    xmlCtxtUseOptions(p, VTN_XML_PARSE_OPTIONS);
    xmlParseDocument(p);
    xmlDocPtr doc = p->myDoc;
    p->myDoc = NULL;
    if (doc && !p->wellFormed) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    return doc;
}

int vtn_xml_parse(vtn_xml_ctx *c, const char *data, size_t len, xmlDoc **out)
{
    *out = NULL;
    reset_err(c);
    if (len == 0 || data == NULL) {
        set_err(c->err, sizeof c->err, &c->nerr, 0, "empty body");
        return -EBADMSG;
    }
    if (len > c->max_bytes || len > INT_MAX) {
        set_err(c->err, sizeof c->err, &c->nerr, 0,
                "document of %zu bytes exceeds the limit of %zu", len, c->max_bytes);
        return -EBADMSG;
    }
    /* libxml2 takes a NUL byte for the end of the input and would ignore
     * whatever follows; no XML character is NUL, so refuse it (UTF-16
     * documents, which have NUL bytes, start with a BOM or "<\0"/"\0<"). */
    int utf16 =
        len >= 2 &&
        ((data[0] == '\xfe' && data[1] == '\xff') || (data[0] == '\xff' && data[1] == '\xfe') ||
         (data[0] == '<' && data[1] == '\0') || (data[0] == '\0' && data[1] == '<'));
    const char *nul = utf16 ? NULL : memchr(data, 0, len);
    if (nul) {
        set_err(c->err, sizeof c->err, &c->nerr, 0, "NUL byte at offset %zu", (size_t)(nul - data));
        return -EBADMSG;
    }
    if (c->pctxt->dict && xmlDictSize(c->pctxt->dict) > VTN_XML_DICT_MAX && ctx_new_parser(c) != 0)
        return -ENOMEM;
    if (prescan(c, data, len) < 0)
        return -EBADMSG;
    c->stopped = 0;
    xmlDocPtr doc =
        c->utf8 ? read_utf8(c, data, len)
                : xmlCtxtReadMemory(c->pctxt, data, (int)len, NULL, NULL, VTN_XML_PARSE_OPTIONS);
    if (c->stopped) {
        if (doc)
            xmlFreeDoc(doc);
        return -EBADMSG;
    }
    if (doc == NULL) {
        if (!c->nerr) {
            const xmlError *e = xmlCtxtGetLastError(c->pctxt);
            if (e && e->code == XML_ERR_NO_MEMORY)
                return -ENOMEM;
            set_err(c->err, sizeof c->err, &c->nerr, 0, "not well-formed XML");
        }
        return -EBADMSG;
    }
    /* The SAX hook already stops at a DOCTYPE; this is the belt to it. */
    if (doc->intSubset || doc->extSubset) {
        xmlFreeDoc(doc);
        set_err(c->err, sizeof c->err, &c->nerr, 0, "DOCTYPE is not allowed in OpenADR messages");
        return -EBADMSG;
    }
    if (xmlDocGetRootElement(doc) == NULL) {
        xmlFreeDoc(doc);
        set_err(c->err, sizeof c->err, &c->nerr, 0, "no root element");
        return -EBADMSG;
    }
    reset_err(c); /* drop warnings */
    *out = doc;
    return 0;
}

int vtn_xml_validate(vtn_xml_ctx *c, xmlDoc *doc)
{
    reset_err(c);
    if (c->vctxt == NULL)
        return -EINVAL;
    int rc = xmlSchemaValidateDoc(c->vctxt, doc);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        set_err(c->err, sizeof c->err, &c->nerr, 0, "internal validation error");
        return -ENOMEM;
    }
    if (!c->nerr)
        set_err(c->err, sizeof c->err, &c->nerr, 0, "document is not valid");
    return -EBADMSG;
}

/* ---- tree helpers -------------------------------------------------------- */

int vtn_xml_is(const xmlNode *n, const char *ns, const char *local)
{
    if (n == NULL || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, local) != 0)
        return 0;
    if (ns == NULL || ns[0] == '\0')
        return n->ns == NULL || n->ns->href == NULL || n->ns->href[0] == '\0';
    return n->ns && n->ns->href && strcmp((const char *)n->ns->href, ns) == 0;
}

xmlNode *vtn_xml_first_elem(const xmlNode *parent)
{
    if (parent == NULL)
        return NULL;
    for (xmlNode *n = parent->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE)
            return n;
    return NULL;
}

xmlNode *vtn_xml_next_elem(const xmlNode *n)
{
    if (n == NULL)
        return NULL;
    for (n = n->next; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE)
            return (xmlNode *)n;
    return NULL;
}

xmlNode *vtn_xml_child(const xmlNode *parent, const char *ns, const char *local)
{
    for (xmlNode *n = vtn_xml_first_elem(parent); n; n = vtn_xml_next_elem(n))
        if (vtn_xml_is(n, ns, local))
            return n;
    return NULL;
}

xmlNode *vtn_xml_path(const xmlNode *parent, int depth, ...)
{
    va_list ap;
    va_start(ap, depth);
    const xmlNode *n = parent;
    for (int i = 0; i < depth && n; i++) {
        const char *ns = va_arg(ap, const char *);
        const char *local = va_arg(ap, const char *);
        n = vtn_xml_child(n, ns, local);
    }
    va_end(ap);
    return (xmlNode *)n;
}

/* Appends s[0..n) to out at *off; 0, or -E2BIG when it does not fit. */
static int put(char *out, size_t outlen, size_t *off, const char *s, size_t n)
{
    size_t room = outlen - 1 - *off;
    size_t k = n < room ? n : room;
    memcpy(out + *off, s, k);
    *off += k;
    out[*off] = '\0';
    return k < n ? -E2BIG : 0;
}

int vtn_xml_text(const xmlNode *n, char *out, size_t outlen)
{
    if (outlen == 0)
        return -E2BIG;
    out[0] = '\0';
    if (n == NULL)
        return -ENOENT;
    size_t off = 0;
    for (const xmlNode *t = n->children; t; t = t->next) {
        if ((t->type == XML_TEXT_NODE || t->type == XML_CDATA_SECTION_NODE) && t->content) {
            if (put(out, outlen, &off, (const char *)t->content, strlen((const char *)t->content)))
                return -E2BIG;
        }
    }
    return (int)off;
}

static int is_xml_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int vtn_xml_text_trim(const xmlNode *n, char *out, size_t outlen)
{
    if (outlen == 0)
        return -E2BIG;
    out[0] = '\0';
    if (n == NULL)
        return -ENOENT;
    /* Pass 1: where the non-blank part starts and ends in the concatenated
     * text, so surrounding blanks never count against the cap. */
    size_t total = 0, first = SIZE_MAX, last = 0;
    for (const xmlNode *t = n->children; t; t = t->next) {
        if (!((t->type == XML_TEXT_NODE || t->type == XML_CDATA_SECTION_NODE) && t->content))
            continue;
        const char *s = (const char *)t->content;
        for (size_t i = 0; s[i]; i++, total++)
            if (!is_xml_space(s[i])) {
                if (first == SIZE_MAX)
                    first = total;
                last = total + 1;
            }
    }
    if (first == SIZE_MAX)
        return 0;
    /* Pass 2: copy [first, last). */
    size_t pos = 0, off = 0;
    for (const xmlNode *t = n->children; t && pos < last; t = t->next) {
        if (!((t->type == XML_TEXT_NODE || t->type == XML_CDATA_SECTION_NODE) && t->content))
            continue;
        const char *s = (const char *)t->content;
        size_t len = strlen(s);
        size_t from = first > pos ? first - pos : 0;
        size_t to = last - pos < len ? last - pos : len;
        if (from < to && put(out, outlen, &off, s + from, to - from))
            return -E2BIG;
        pos += len;
    }
    return (int)off;
}

int vtn_xml_attr(const xmlNode *n, const char *ns, const char *local, char *out, size_t outlen)
{
    if (outlen == 0)
        return -E2BIG;
    out[0] = '\0';
    if (n == NULL || n->type != XML_ELEMENT_NODE)
        return -ENOENT;
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (strcmp((const char *)a->name, local) != 0)
            continue;
        int match = (ns == NULL || ns[0] == '\0')
                        ? a->ns == NULL
                        : (a->ns && a->ns->href && strcmp((const char *)a->ns->href, ns) == 0);
        if (!match)
            continue;
        size_t off = 0;
        for (const xmlNode *t = a->children; t; t = t->next)
            if (t->type == XML_TEXT_NODE && t->content &&
                put(out, outlen, &off, (const char *)t->content, strlen((const char *)t->content)))
                return -E2BIG;
        return (int)off;
    }
    return -ENOENT;
}
