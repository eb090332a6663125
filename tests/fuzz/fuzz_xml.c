/* libFuzzer target for the worker's XML entry point: hardened parse, payload
 * lookup, schema validation and field extraction (wk_msg_parse), without
 * Redis. Whatever the input, the error or answer the worker would write must
 * be a well-formed document; anything else aborts.
 *
 * The first byte picks the service endpoint (mod 6, 0 = any), the rest is
 * the body, so the endpoint check is fuzzed too. Inputs reach the 4 MiB body
 * limit (-max_len in tests/fuzz/CMakeLists.txt). Seeds: tests/fuzz/corpus/xml/,
 * among them documents at and past the caps of vtn/xml.h (attributes,
 * namespaces, elements) and markup-like text the pre-scan must read right.
 * Links: workers/oadr_xml.c, the wk_schemas library (embedded schemas/) and
 * vtn_common (libxml2). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oadr_xml.h"
#include "vtn/buf.h"
#include "vtn/xml.h"

static wk_codec *g_codec;
static vtn_xml_ctx *g_check; /* parse-only context to re-read our own output */

static void check_well_formed(const vtn_buf *b)
{
    xmlDoc *doc = NULL;
    if (vtn_xml_parse(g_check, b->data, b->len, &doc) != 0)
        abort(); /* the codec wrote something a VEN could not parse */
    xmlFreeDoc(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_codec == NULL) {
        if (wk_oadr_init() != 0)
            abort();
        g_codec = wk_codec_new();
        g_check = vtn_xml_ctx_new(NULL);
        if (g_codec == NULL || g_check == NULL)
            abort();
    }
    if (size == 0)
        return 0;
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
