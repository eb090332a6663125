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

/* OpenADR documents nest about a dozen levels (Green Button feeds a few
 * more); libxml2's own limit without XML_PARSE_HUGE is 256. */
#define VTN_XML_MAX_DEPTH 64
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
    int depth;
    int stopped; /* our own SAX hooks halted the parser */
    int nerr;
    char err[VTN_XML_ERR_MAX];
    startElementNsSAX2Func orig_start;
    endElementNsSAX2Func orig_end;
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

static void hook_start(void *data, const xmlChar *localname, const xmlChar *prefix,
                       const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                       int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    xmlParserCtxtPtr p = data;
    vtn_xml_ctx *c = p->_private;
    if (++c->depth > VTN_XML_MAX_DEPTH) {
        c->stopped = 1;
        set_err(c->err, sizeof c->err, &c->nerr, xmlSAX2GetLineNumber(p),
                "elements nested deeper than %d levels", VTN_XML_MAX_DEPTH);
        xmlStopParser(p);
        return;
    }
    c->orig_start(data, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
                  nb_defaulted, attributes);
}

static void hook_end(void *data, const xmlChar *localname, const xmlChar *prefix,
                     const xmlChar *uri)
{
    xmlParserCtxtPtr p = data;
    vtn_xml_ctx *c = p->_private;
    c->depth--;
    c->orig_end(data, localname, prefix, uri);
}

static int ctx_new_parser(vtn_xml_ctx *c)
{
    xmlParserCtxtPtr p = xmlNewParserCtxt();
    if (p == NULL)
        return -ENOMEM;
    p->_private = c;
    p->sax->serror = parser_structured_error;
    p->sax->internalSubset = hook_internal_subset;
    c->orig_start = p->sax->startElementNs;
    c->orig_end = p->sax->endElementNs;
    p->sax->startElementNs = hook_start;
    p->sax->endElementNs = hook_end;
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
    c->depth = 0;
    c->stopped = 0;
    xmlDocPtr doc = xmlCtxtReadMemory(c->pctxt, data, (int)len, NULL, NULL, VTN_XML_PARSE_OPTIONS);
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
