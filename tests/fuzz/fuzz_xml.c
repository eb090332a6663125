/* libFuzzer target for the worker's XML entry point: hardened parse, payload
 * lookup, schema validation and field extraction (wk_msg_parse), without
 * Redis. Whatever the input, the error or answer the worker would write must
 * be a well-formed document; anything else aborts. And on small inputs,
 * the pre-scan of vtn/xml.h refuses nothing libxml2 reads within the caps,
 * and vtn_xml_parse accepts nothing libxml2's own xmlReadMemory refuses. An
 * oadrPoll wk_msg_parse accepts (through its shortcut or the validator) is
 * valid against the project schema.
 *
 * The first byte picks the service endpoint (mod 6, 0 = any), the rest is
 * the body, so the endpoint check is fuzzed too. Inputs reach the 4 MiB body
 * limit (-max_len in tests/fuzz/CMakeLists.txt). Seeds: tests/fuzz/corpus/xml/,
 * among them documents at and past the caps of vtn/xml.h (attributes,
 * namespaces, elements) and markup-like text the pre-scan must read right.
 * Links: workers/codec/wk_codec.c, the wk_schemas library (embedded schemas/) and
 * vtn_common (libxml2). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "wk_codec.h"
#include "vtn/buf.h"
#include "vtn/xml.h"

static wk_codec *g_codec;
static vtn_xml_ctx *g_check; /* parse-only context to re-read our own output */
static vtn_xml_ctx *g_valid; /* the project schema, for the oadrPoll shortcut */

static void check_well_formed(const vtn_buf *b)
{
    xmlDoc *doc = NULL;
    if (vtn_xml_parse(g_check, b->data, b->len, &doc) != 0)
        abort(); /* the codec wrote something a VEN could not parse */
    xmlFreeDoc(doc);
}

/* ---- the pre-scan must not refuse what it has no reason to ------------ */

typedef struct tree_counts {
    size_t ns_total;
    int over; /* past a per-element cap, or deeper than the cap */
} tree_counts;

static void count_tree(const xmlNode *n, int depth, tree_counts *t)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        size_t attrs = 0, ns = 0;
        for (const xmlAttr *a = n->properties; a; a = a->next)
            attrs++;
        for (const xmlNs *d = n->nsDef; d; d = d->next)
            ns++;
        t->ns_total += ns;
        if (depth > VTN_XML_MAX_DEPTH || attrs > VTN_XML_MAX_ATTRS || ns > VTN_XML_MAX_NS)
            t->over = 1;
        count_tree(n->children, depth + 1, t);
    }
}

/* A differential check on small 8-bit inputs (where libxml2's own cost is
 * bounded): a document libxml2 reads as well-formed, without a DOCTYPE and
 * within every cap of vtn/xml.h, must get through vtn_xml_parse, unless it
 * declares an encoding the pre-scan refuses by design. Below 16 KiB, text,
 * element and document-wide attribute caps cannot be reached. */
static void prescan_refuses_only_for_a_reason(const char *body, size_t len)
{
    if (len == 0 || len > 16384 || memchr(body, 0, len) || memmem(body, len, "DOCTYPE", 7))
        return;
    xmlDoc *raw = xmlReadMemory(body, (int)len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_COMPACT |
                                    XML_PARSE_BIG_LINES | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (raw == NULL) {
        xmlDoc *doc = NULL;
        if (vtn_xml_parse(g_check, body, len, &doc) == 0)
            abort(); /* our parse took a document libxml2's own read refuses */
        return;
    }
    tree_counts t = {0};
    count_tree(xmlDocGetRootElement(raw), 1, &t);
    int expect_ok = raw->intSubset == NULL && raw->extSubset == NULL &&
                    xmlDocGetRootElement(raw) != NULL && !t.over &&
                    t.ns_total <= VTN_XML_MAX_NS_TOTAL;
    xmlFreeDoc(raw);
    if (!expect_ok)
        return;
    xmlDoc *doc = NULL;
    if (vtn_xml_parse(g_check, body, len, &doc) == 0) {
        xmlFreeDoc(doc);
        return;
    }
    const char *why = vtn_xml_error(g_check);
    if (strstr(why, "encoding") == NULL && strstr(why, "starts with '<'") == NULL)
        abort(); /* the pre-scan refused a document libxml2 reads, for no cap */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_codec == NULL) {
        if (wk_oadr_init() != 0)
            abort();
        g_codec = wk_codec_new();
        g_check = vtn_xml_ctx_new(NULL);
        g_valid = vtn_xml_ctx_new(wk_codec_schema());
        if (g_codec == NULL || g_check == NULL || g_valid == NULL)
            abort();
    }
    if (size == 0)
        return 0;
    prescan_refuses_only_for_a_reason((const char *)data + 1, size - 1);
    enum wk_service svc = (enum wk_service)(data[0] % WK_SVC__COUNT);
    wk_msg m;
    int rc = wk_msg_parse(g_codec, svc, (const char *)data + 1, size - 1, &m);
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    if (rc == 0) {
        if (m.code != 200 || m.type == WK_MSG_NONE || m.doc == NULL || m.payload == NULL)
            abort();
        if (svc != WK_SVC_NONE && !wk_msg_allowed(svc, m.type))
            abort();
        if (m.type == WK_MSG_POLL && vtn_xml_validate(g_valid, m.doc) != 0)
            abort(); /* the oadrPoll shortcut took a document the schema refuses */
        /* Echo what was read, as a handler would. */
        if (wk_write_response(&b, 200, m.ven_name, m.request_id, m.ven_id[0] ? m.ven_id : NULL))
            abort();
        check_well_formed(&b);
        vtn_buf_reset(&b);
        m.code = 454; /* and a handler's own error in the message's reply type */
    } else if (rc == -EBADMSG) {
        if (m.code != 453 && m.code != 454)
            abort();
    } else {
        if (rc != -ENOMEM)
            abort();
        wk_msg_clear(&m);
        vtn_buf_free(&b);
        return 0;
    }
    if (wk_write_error(&b, &m, "openvtn-VTN", 10000) != 0)
        abort();
    check_well_formed(&b);
    vtn_buf_free(&b);
    wk_msg_clear(&m);
    return 0;
}
