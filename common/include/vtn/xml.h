/* Hardened XML parsing and XSD validation with libxml2 (2.9.14 on Debian 12).
 *
 * Parsing never substitutes entities, never loads a DTD or anything from the
 * network or the file system, and rejects any document with a DOCTYPE: the
 * options are XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_COMPACT |
 * XML_PARSE_BIG_LINES and never NOENT, DTDLOAD, DTDATTR, DTDVALID, HUGE or
 * XINCLUDE. Before libxml2 sees a document, a pre-scan of its bytes refuses
 * it past any of the caps below (libxml2 2.9.14 checks attributes and
 * namespace declarations of one element against each other, so 40,000 of
 * them on one element cost seconds, and every element costs about 120 bytes
 * of tree). The size is bounded by the context's cap. libxml2 errors are
 * captured per call (never printed) and read with vtn_xml_error().
 *
 * A schema set is compiled once (vtn_xml_schema_*), while the process is
 * single-threaded, and is then shared read-only; every thread makes its own
 * vtn_xml_ctx (parser + validation context). After compiling, call
 * vtn_xml_lockdown() to install the deny-all external entity loader. */
#ifndef VTN_XML_H
#define VTN_XML_H

#include <stddef.h>

#include <libxml/tree.h>

#define VTN_XML_ERR_MAX 320 /* bytes of the captured error text */
#define VTN_XML_DEFAULT_MAX_BYTES (4u << 20)

/* What an OpenADR 2.0b document may hold; docs/xml.md says why each is
 * enough. A document past one is refused with -EBADMSG and a reason. */
#define VTN_XML_MAX_DEPTH 64        /* nesting; the deepest 2.0b message nests ~12 */
#define VTN_XML_MAX_ELEMENTS 100000 /* per document: a day of minute data is ~45,000 */
#define VTN_XML_MAX_ATTRS 32        /* per element, xmlns declarations apart; 2.0b types use <= 7 */
#define VTN_XML_MAX_ATTRS_TOTAL 10000 /* per document */
#define VTN_XML_MAX_NS 32             /* xmlns declarations per element; 2.0b has 17 namespaces */
#define VTN_XML_MAX_NS_TOTAL 1024     /* xmlns declarations per document */
#define VTN_XML_MAX_TEXT (64u << 10)  /* bytes of one text run or attribute value */

/* One schema document in memory, e.g. generated from the schemas/ folder at build
 * time; xs:import/xs:include of `name` (a bare file name) resolve to it. */
typedef struct vtn_xml_file {
    const char *name;
    const unsigned char *data;
    size_t len;
} vtn_xml_file;

/* Process-wide set-up (xmlInitParser, silences libxml2's default error
 * output). Idempotent; call before threads start. */
void vtn_xml_global_init(void);
/* Installs an external entity loader that refuses every URL and file, for
 * the rest of the process. Call after the last schema was compiled. */
void vtn_xml_lockdown(void);

typedef struct vtn_xml_schema vtn_xml_schema;
/* Compiles files[main] with its imports served from files[] only (nothing is
 * read from disk or network). 0, -EINVAL (err says why), -ENOMEM. */
int vtn_xml_schema_from_memory(const vtn_xml_file *files, size_t nfiles, const char *main_name,
                               vtn_xml_schema **out, char *err, size_t errlen);
/* Compiles a schema from a file; its imports are read from the same
 * directory (and only there). For tests and tools (e.g. the official 2.0b
 * schema); must run before vtn_xml_lockdown(). 0, -EINVAL, -ENOMEM. */
int vtn_xml_schema_from_file(const char *path, vtn_xml_schema **out, char *err, size_t errlen);
void vtn_xml_schema_free(vtn_xml_schema **s);

/* Per-thread parse/validate state. schema may be NULL (parse only). */
typedef struct vtn_xml_ctx vtn_xml_ctx;
vtn_xml_ctx *vtn_xml_ctx_new(const vtn_xml_schema *schema);
void vtn_xml_ctx_free(vtn_xml_ctx **c);
/* Documents larger than this fail (default VTN_XML_DEFAULT_MAX_BYTES). */
void vtn_xml_ctx_set_max_bytes(vtn_xml_ctx *c, size_t max);

/* Parses data into *out (the caller frees it with xmlFreeDoc). 0, or
 * -EBADMSG (not well-formed, DOCTYPE present, too large, empty, past a cap
 * above, an encoding other than UTF-8, UTF-16, ASCII, ISO-8859-n or
 * windows-125n; see vtn_xml_error), -ENOMEM. */
int vtn_xml_parse(vtn_xml_ctx *c, const char *data, size_t len, xmlDoc **out);
/* Validates doc against the context's schema. 0, -EBADMSG (first error in
 * vtn_xml_error), -EINVAL without a schema, -ENOMEM. */
int vtn_xml_validate(vtn_xml_ctx *c, xmlDoc *doc);
/* The first error of the last call on c, e.g. "line 3: Opening and ending
 * tag mismatch: venID line 3 and ven"; "" when the last call succeeded. */
const char *vtn_xml_error(const vtn_xml_ctx *c);

/* ---- namespace-aware tree helpers (only element nodes count). ns is the
 * namespace URI (NULL or "" = no namespace); prefixes never matter. */
int vtn_xml_is(const xmlNode *n, const char *ns, const char *local);
xmlNode *vtn_xml_first_elem(const xmlNode *parent);
xmlNode *vtn_xml_next_elem(const xmlNode *n);
/* First child element of parent with that namespace and local name. */
xmlNode *vtn_xml_child(const xmlNode *parent, const char *ns, const char *local);
/* Follows a path of (ns, local) pairs down from parent: vtn_xml_path(n, 2,
 * EI, "eiResponse", EI, "responseCode"). NULL when a step is missing. */
xmlNode *vtn_xml_path(const xmlNode *parent, int depth, ...);
/* Copies the text content of n (text children concatenated, no trimming)
 * into out as a NUL-terminated string. Returns the length, -E2BIG when it
 * does not fit in outlen - 1 bytes (out then holds a truncated prefix), or
 * -ENOENT when n is NULL (out = ""). */
int vtn_xml_text(const xmlNode *n, char *out, size_t outlen);
/* The same with leading and trailing XML white space removed (for values of
 * xs:token/boolean/int types, whose white space the schema collapses). */
int vtn_xml_text_trim(const xmlNode *n, char *out, size_t outlen);
/* Attribute value by namespace URI (NULL = no namespace) into out; same
 * returns as vtn_xml_text. */
int vtn_xml_attr(const xmlNode *n, const char *ns, const char *local, char *out, size_t outlen);

#endif
