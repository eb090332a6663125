/* vtn/xml.h: hardened parsing, namespace-aware helpers, schema compilation
 * from memory and from a file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/time.h"
#include "vtn/xml.h"

#define OADR "http://openadr.org/oadr-2.0b/2012/07"
#define EI "http://docs.oasis-open.org/ns/energyinterop/201110"

static vtn_xml_ctx *g_ctx;

static int setup(void **state)
{
    (void)state;
    vtn_xml_global_init();
    g_ctx = vtn_xml_ctx_new(NULL);
    return g_ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    vtn_xml_ctx_free(&g_ctx);
    assert_null(g_ctx);
    return 0;
}

static int parse(const char *s, xmlDoc **doc)
{
    return vtn_xml_parse(g_ctx, s, strlen(s), doc);
}

/* ---- hardening ----------------------------------------------------------- */

static void test_doctype_rejected(void **state)
{
    (void)state;
    xmlDoc *doc = NULL;
    assert_int_equal(parse("<?xml version=\"1.0\"?><!DOCTYPE a><a/>", &doc), -EBADMSG);
    assert_null(doc);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "DOCTYPE"));
    /* An internal subset that declares nothing harmful is refused all the same. */
    assert_int_equal(parse("<!DOCTYPE a [<!ELEMENT a ANY>]><a/>", &doc), -EBADMSG);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "DOCTYPE"));
}

static void test_billion_laughs_rejected_fast(void **state)
{
    (void)state;
    char doc_text[4096];
    size_t n = 0;
    n += (size_t)snprintf(doc_text + n, sizeof doc_text - n,
                          "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for (int i = 1; i <= 9; i++) {
        n += (size_t)snprintf(doc_text + n, sizeof doc_text - n, "<!ENTITY lol%d \"", i);
        for (int k = 0; k < 10; k++)
            n += (size_t)snprintf(doc_text + n, sizeof doc_text - n, "&lol%.0d;", i - 1);
        n += (size_t)snprintf(doc_text + n, sizeof doc_text - n, "\">\n");
    }
    snprintf(doc_text + n, sizeof doc_text - n, "]>\n<lolz>&lol9;</lolz>\n");
    xmlDoc *doc = NULL;
    uint64_t t0 = vtn_mono_ns();
    assert_int_equal(parse(doc_text, &doc), -EBADMSG);
    uint64_t dt = vtn_mono_ns() - t0;
    assert_null(doc);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "DOCTYPE"));
    printf("# billion laughs rejected in %.1f us\n", (double)dt / 1e3);
}

static void test_external_entity_rejected(void **state)
{
    (void)state;
    xmlDoc *doc = NULL;
    /* Classic XXE through a general entity... */
    assert_int_equal(
        parse("<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>", &doc),
        -EBADMSG);
    assert_null(doc);
    /* ...through a parameter entity and an external DTD... */
    assert_int_equal(
        parse("<!DOCTYPE a [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/x.dtd\"> %p;]><a/>", &doc),
        -EBADMSG);
    assert_int_equal(parse("<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>", &doc), -EBADMSG);
    /* ...and without a DOCTYPE an entity reference is simply undefined. */
    assert_int_equal(parse("<a>&x;</a>", &doc), -EBADMSG);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "'x'"));
    /* The predefined entities and character references still work. */
    assert_int_equal(parse("<a>&lt;&#65;&#x42;&amp;</a>", &doc), 0);
    char t[16];
    assert_int_equal(vtn_xml_text(xmlDocGetRootElement(doc), t, sizeof t), 4);
    assert_string_equal(t, "<AB&");
    xmlFreeDoc(doc);
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 7 + 16);
    size_t n = 0;
    for (int i = 0; i < depth; i++)
        n += (size_t)sprintf(s + n, "<a>");
    for (int i = 0; i < depth; i++)
        n += (size_t)sprintf(s + n, "</a>");
    return s;
}

static void test_deep_nesting_rejected(void **state)
{
    (void)state;
    xmlDoc *doc = NULL;
    char *ok = nested(60);
    assert_int_equal(parse(ok, &doc), 0);
    xmlFreeDoc(doc);
    free(ok);
    char *deep = nested(65);
    assert_int_equal(parse(deep, &doc), -EBADMSG);
    assert_null(doc);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "nested deeper than 64"));
    free(deep);
    char *very = nested(100000);
    assert_int_equal(parse(very, &doc), -EBADMSG);
    free(very);
}

static void test_not_xml(void **state)
{
    (void)state;
    xmlDoc *doc = NULL;
    assert_int_equal(vtn_xml_parse(g_ctx, "", 0, &doc), -EBADMSG);
    assert_string_equal(vtn_xml_error(g_ctx), "empty body");
    assert_int_equal(parse("hello world", &doc), -EBADMSG);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "line 1: "));
    assert_int_equal(parse("<a><b></a>", &doc), -EBADMSG);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "mismatch"));
    assert_int_equal(parse("<a>", &doc), -EBADMSG);
    assert_int_equal(parse("<a/><b/>", &doc), -EBADMSG);
    assert_int_equal(parse("{\"json\": true}", &doc), -EBADMSG);
    const char bin[] = {'<', 'a', '>', 0x01, (char)0xff, (char)0xfe, '<', '/', 'a', '>'};
    assert_int_equal(vtn_xml_parse(g_ctx, bin, sizeof bin, &doc), -EBADMSG);
    assert_null(doc);
    /* A NUL inside the body is not a terminator to hide a second document. */
    const char nul[] = "<a/>\0<b/>";
    assert_int_equal(vtn_xml_parse(g_ctx, nul, sizeof nul - 1, &doc), -EBADMSG);
    /* The error is per call: a good document clears it. */
    assert_int_equal(parse("<ok/>", &doc), 0);
    assert_string_equal(vtn_xml_error(g_ctx), "");
    xmlFreeDoc(doc);
}

static void test_size_cap(void **state)
{
    (void)state;
    vtn_xml_ctx *c = vtn_xml_ctx_new(NULL);
    vtn_xml_ctx_set_max_bytes(c, 64);
    xmlDoc *doc = NULL;
    const char *small = "<a>small</a>";
    assert_int_equal(vtn_xml_parse(c, small, strlen(small), &doc), 0);
    xmlFreeDoc(doc);
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, "<a>", 3);
    memcpy(big + sizeof big - 4, "</a>", 4);
    assert_int_equal(vtn_xml_parse(c, big, sizeof big, &doc), -EBADMSG);
    assert_non_null(strstr(vtn_xml_error(c), "exceeds the limit of 64"));
    vtn_xml_ctx_free(&c);
}

static void test_cdata_and_encodings(void **state)
{
    (void)state;
    xmlDoc *doc = NULL;
    char t[64];
    assert_int_equal(parse("<a>x<![CDATA[<&>]]>y</a>", &doc), 0);
    assert_int_equal(vtn_xml_text(xmlDocGetRootElement(doc), t, sizeof t), 5);
    assert_string_equal(t, "x<&>y");
    xmlFreeDoc(doc);
    /* ISO-8859-1 input comes out as UTF-8. */
    const char latin1[] = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>";
    assert_int_equal(vtn_xml_parse(g_ctx, latin1, sizeof latin1 - 1, &doc), 0);
    assert_int_equal(vtn_xml_text(xmlDocGetRootElement(doc), t, sizeof t), 5);
    assert_string_equal(t, "caf\xc3\xa9");
    xmlFreeDoc(doc);
    /* Undeclared UTF-8 that is not UTF-8. */
    const char bad[] = "<a>caf\xe9</a>";
    assert_int_equal(vtn_xml_parse(g_ctx, bad, sizeof bad - 1, &doc), -EBADMSG);
}

/* ---- namespace-aware helpers ---------------------------------------------- */

static void check_poll_tree(xmlDoc *doc)
{
    xmlNode *root = xmlDocGetRootElement(doc);
    assert_true(vtn_xml_is(root, OADR, "oadrPayload"));
    assert_false(vtn_xml_is(root, EI, "oadrPayload"));
    xmlNode *poll = vtn_xml_path(root, 2, OADR, "oadrSignedObject", OADR, "oadrPoll");
    assert_non_null(poll);
    char v[64];
    assert_int_equal(vtn_xml_text(vtn_xml_child(poll, EI, "venID"), v, sizeof v), 5);
    assert_string_equal(v, "ven-1");
    /* Same local name, other namespace: not a match. */
    assert_null(vtn_xml_child(poll, OADR, "venID"));
}

static void test_prefix_variants(void **state)
{
    (void)state;
    static const char *const variants[] = {
        /* the spec's prefixes */
        "<oadr:oadrPayload xmlns:oadr=\"" OADR "\" xmlns:ei=\"" EI "\"><oadr:oadrSignedObject>"
        "<oadr:oadrPoll><ei:venID>ven-1</ei:venID></oadr:oadrPoll></oadr:oadrSignedObject>"
        "</oadr:oadrPayload>",
        /* default namespaces, redeclared on a child */
        "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll>"
        "<venID xmlns=\"" EI "\">ven-1</venID></oadrPoll></oadrSignedObject></oadrPayload>",
        /* other prefixes, declarations on a parent, a prefix reused for another URI */
        "<x:oadrPayload xmlns:x=\"" OADR "\"><x:oadrSignedObject xmlns:y=\"" EI "\">"
        "<x:oadrPoll><y:venID>ven-1</y:venID><x:venID xmlns:x=\"urn:other\">no</x:venID>"
        "</x:oadrPoll></x:oadrSignedObject></x:oadrPayload>",
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        xmlDoc *doc = NULL;
        assert_int_equal(parse(variants[i], &doc), 0);
        check_poll_tree(doc);
        xmlFreeDoc(doc);
    }
}

static void test_wrong_namespace(void **state)
{
    (void)state;
    xmlDoc *doc = NULL;
    assert_int_equal(parse("<oadrPayload xmlns=\"http://openadr.org/oadr-2.0a/2012/07\"/>", &doc),
                     0);
    assert_false(vtn_xml_is(xmlDocGetRootElement(doc), OADR, "oadrPayload"));
    xmlFreeDoc(doc);
    assert_int_equal(parse("<oadrPayload/>", &doc), 0);
    assert_false(vtn_xml_is(xmlDocGetRootElement(doc), OADR, "oadrPayload"));
    assert_true(vtn_xml_is(xmlDocGetRootElement(doc), NULL, "oadrPayload"));
    xmlFreeDoc(doc);
}

static void test_text_helpers(void **state)
{
    (void)state;
    xmlDoc *doc = NULL;
    assert_int_equal(parse("<a xmlns:e=\"" EI "\" e:v=\"2.0b\" v=\"plain\">"
                           "<t>  padded \n</t><b> <!-- c --> x <!-- d --> </b><e/></a>",
                           &doc),
                     0);
    xmlNode *a = xmlDocGetRootElement(doc);
    char s[8];
    assert_int_equal(vtn_xml_text(vtn_xml_child(a, NULL, "t"), s, sizeof s), -E2BIG);
    assert_int_equal(vtn_xml_text_trim(vtn_xml_child(a, NULL, "t"), s, sizeof s), 6);
    assert_string_equal(s, "padded");
    /* Text split by comments is joined; blanks only trimmed at the ends. */
    assert_int_equal(vtn_xml_text_trim(vtn_xml_child(a, NULL, "b"), s, sizeof s), 1);
    assert_string_equal(s, "x");
    assert_int_equal(vtn_xml_text_trim(vtn_xml_child(a, NULL, "e"), s, sizeof s), 0);
    assert_int_equal(vtn_xml_text(NULL, s, sizeof s), -ENOENT);
    assert_string_equal(s, "");
    char tiny[4];
    assert_int_equal(vtn_xml_text_trim(vtn_xml_child(a, NULL, "t"), tiny, sizeof tiny), -E2BIG);
    assert_int_equal(vtn_xml_attr(a, EI, "v", s, sizeof s), 4);
    assert_string_equal(s, "2.0b");
    assert_int_equal(vtn_xml_attr(a, NULL, "v", s, sizeof s), 5);
    assert_string_equal(s, "plain");
    assert_int_equal(vtn_xml_attr(a, OADR, "v", s, sizeof s), -ENOENT);
    assert_null(vtn_xml_path(a, 2, NULL, "t", NULL, "none"));
    xmlFreeDoc(doc);
}

/* ---- schemas --------------------------------------------------------------- */

#define XS "xmlns:xs=\"http://www.w3.org/2001/XMLSchema\""
static const char k_main_xsd[] =
    "<xs:schema " XS " xmlns:m=\"urn:main\" xmlns:t=\"urn:types\" targetNamespace=\"urn:main\" "
    "elementFormDefault=\"qualified\">"
    "<xs:import namespace=\"urn:types\" schemaLocation=\"types.xsd\"/>"
    "<xs:element name=\"root\"><xs:complexType><xs:sequence>"
    "<xs:element name=\"id\" type=\"t:Id\"/></xs:sequence></xs:complexType></xs:element>"
    "</xs:schema>";
static const char k_types_xsd[] =
    "<xs:schema " XS " targetNamespace=\"urn:types\">"
    "<xs:simpleType name=\"Id\"><xs:restriction base=\"xs:string\"><xs:maxLength value=\"4\"/>"
    "</xs:restriction></xs:simpleType></xs:schema>";

static void test_schema_from_memory(void **state)
{
    (void)state;
    const vtn_xml_file files[] = {
        {"main.xsd", (const unsigned char *)k_main_xsd, sizeof k_main_xsd - 1},
        {"types.xsd", (const unsigned char *)k_types_xsd, sizeof k_types_xsd - 1},
    };
    vtn_xml_schema *s = NULL;
    char err[VTN_XML_ERR_MAX];
    assert_int_equal(vtn_xml_schema_from_memory(files, 2, "main.xsd", &s, err, sizeof err), 0);
    vtn_xml_ctx *c = vtn_xml_ctx_new(s);
    assert_non_null(c);
    xmlDoc *doc = NULL;
    const char *good = "<root xmlns=\"urn:main\"><id>abc</id></root>";
    assert_int_equal(vtn_xml_parse(c, good, strlen(good), &doc), 0);
    assert_int_equal(vtn_xml_validate(c, doc), 0);
    xmlFreeDoc(doc);
    const char *bad = "<root xmlns=\"urn:main\">\n<id>abcdef</id></root>";
    assert_int_equal(vtn_xml_parse(c, bad, strlen(bad), &doc), 0);
    assert_int_equal(vtn_xml_validate(c, doc), -EBADMSG);
    /* The message names the line, the element and the facet. */
    assert_non_null(strstr(vtn_xml_error(c), "line 2: "));
    assert_non_null(strstr(vtn_xml_error(c), "{urn:main}id"));
    assert_non_null(strstr(vtn_xml_error(c), "length"));
    xmlFreeDoc(doc);
    const char *wrong_ns = "<root xmlns=\"urn:other\"><id>abc</id></root>";
    assert_int_equal(vtn_xml_parse(c, wrong_ns, strlen(wrong_ns), &doc), 0);
    assert_int_equal(vtn_xml_validate(c, doc), -EBADMSG);
    assert_non_null(strstr(vtn_xml_error(c), "No matching global declaration"));
    xmlFreeDoc(doc);
    vtn_xml_ctx_free(&c);
    vtn_xml_schema_free(&s);
    assert_null(s);

    /* An import that is not in the table is not looked for anywhere else. */
    assert_int_equal(vtn_xml_schema_from_memory(files, 1, "main.xsd", &s, err, sizeof err),
                     -EINVAL);
    assert_null(s);
    assert_true(err[0] != '\0');
    assert_int_equal(vtn_xml_schema_from_memory(files, 2, "nope.xsd", &s, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "nope.xsd"));
    const vtn_xml_file broken[] = {{"b.xsd", (const unsigned char *)"<xs:schema", 10}};
    assert_int_equal(vtn_xml_schema_from_memory(broken, 1, "b.xsd", &s, err, sizeof err), -EINVAL);
}

static void test_lockdown_and_official_schema(void **state)
{
    (void)state;
    /* After lockdown nothing is fetched while parsing... */
    vtn_xml_lockdown();
    const vtn_xml_file files[] = {
        {"main.xsd", (const unsigned char *)k_main_xsd, sizeof k_main_xsd - 1},
        {"types.xsd", (const unsigned char *)k_types_xsd, sizeof k_types_xsd - 1},
    };
    vtn_xml_schema *s = NULL;
    char err[VTN_XML_ERR_MAX];
    /* ...but compiling from memory still serves its own table... */
    assert_int_equal(vtn_xml_schema_from_memory(files, 2, "main.xsd", &s, err, sizeof err), 0);
    vtn_xml_schema_free(&s);
    /* ...and a schema file (tests only) may read its own directory. */
    assert_int_equal(vtn_xml_schema_from_file(VTN_OFFICIAL_SCHEMA, &s, err, sizeof err), 0);
    vtn_xml_ctx *c = vtn_xml_ctx_new(s);
    xmlDoc *doc = NULL;
    const char *poll =
        "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll>"
        "<venID xmlns=\"" EI "\">v</venID></oadrPoll></oadrSignedObject></oadrPayload>";
    assert_int_equal(vtn_xml_parse(c, poll, strlen(poll), &doc), 0);
    assert_int_equal(vtn_xml_validate(c, doc), 0);
    xmlFreeDoc(doc);
    vtn_xml_ctx_free(&c);
    vtn_xml_schema_free(&s);
    assert_int_equal(vtn_xml_schema_from_file("no/such/schema.xsd", &s, err, sizeof err), -EINVAL);
    assert_int_equal(vtn_xml_validate(g_ctx, NULL), -EINVAL); /* no schema on this context */
}

/* The per-thread parser context is rebuilt when its name dictionary grows;
 * documents parsed before must stay intact. */
static void test_dictionary_rebuild(void **state)
{
    (void)state;
    xmlDoc *keep = NULL;
    assert_int_equal(parse("<keep><name>still here</name></keep>", &keep), 0);
    char s[64];
    for (int i = 0; i < 25000; i++) {
        snprintf(s, sizeof s, "<e%d a%d=\"1\"/>", i, i);
        xmlDoc *doc = NULL;
        assert_int_equal(parse(s, &doc), 0);
        xmlFreeDoc(doc);
    }
    xmlNode *n = vtn_xml_child(xmlDocGetRootElement(keep), NULL, "name");
    assert_int_equal(vtn_xml_text(n, s, sizeof s), 10);
    assert_string_equal(s, "still here");
    xmlFreeDoc(keep);
}

/* ---- caps on what a document holds ----------------------------------------- */

/* "<r><e" + n attributes (or xmlns declarations) + "/></r>". */
static char *wide_element(int n, const char *fmt)
{
    char *s = malloc((size_t)n * 40 + 32);
    size_t k = (size_t)sprintf(s, "<r><e");
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(s + k, fmt, i, i);
    strcpy(s + k, "/></r>");
    return s;
}

static void expect_refused(const char *doc_text, const char *why)
{
    xmlDoc *doc = NULL;
    assert_int_equal(parse(doc_text, &doc), -EBADMSG);
    assert_null(doc);
    if (strstr(vtn_xml_error(g_ctx), why) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", vtn_xml_error(g_ctx), why);
}

static void expect_parsed(const char *doc_text)
{
    xmlDoc *doc = NULL;
    if (parse(doc_text, &doc) != 0)
        fail_msg("refused: %s", vtn_xml_error(g_ctx));
    xmlFreeDoc(doc);
}

/* The attack of issue 8: tens of thousands of attributes or namespace
 * declarations on one element are refused before libxml2 reads them. */
static void test_attribute_and_namespace_caps(void **state)
{
    (void)state;
    char *d = wide_element(VTN_XML_MAX_ATTRS, " a%d=\"%d\"");
    expect_parsed(d);
    free(d);
    d = wide_element(VTN_XML_MAX_ATTRS + 1, " a%d=\"%d\"");
    expect_refused(d, "element e has more than 32 attributes");
    free(d);
    d = wide_element(40000, " a%d=\"%d\"");
    expect_refused(d, "element e has more than 32 attributes");
    free(d);

    d = wide_element(VTN_XML_MAX_NS, " xmlns:p%d=\"urn:x:%d\"");
    expect_parsed(d);
    free(d);
    d = wide_element(40000, " xmlns:p%d=\"urn:x:%d\"");
    expect_refused(d, "element e declares more than 32 namespaces");
    free(d);

    /* Declarations spread over many elements count for the document. */
    char *many = malloc((VTN_XML_MAX_NS_TOTAL + 1) * 48 + 16);
    size_t k = (size_t)sprintf(many, "<r>");
    for (int i = 0; i <= VTN_XML_MAX_NS_TOTAL; i++)
        k += (size_t)sprintf(many + k, "<e xmlns:p=\"urn:x:%d\"/>", i);
    strcpy(many + k, "</r>");
    expect_refused(many, "more than 1024 namespace declarations in the document");
    free(many);

    many = malloc((VTN_XML_MAX_ATTRS_TOTAL / 10 + 1) * 80 + 16);
    k = (size_t)sprintf(many, "<r>");
    for (int i = 0; i <= VTN_XML_MAX_ATTRS_TOTAL / 10; i++)
        k += (size_t)sprintf(many + k, "<e a=\"\" b=\"\" c=\"\" d=\"\" e=\"\" f=\"\" g=\"\" h=\"\" "
                                       "i=\"\" j=\"\"/>");
    strcpy(many + k, "</r>");
    expect_refused(many, "more than 10000 attributes in the document");
    free(many);

    /* A well-formedness error first does not let the rest through: libxml2
     * would keep scanning after it. */
    char *hidden = malloc(40000 * 20 + 64);
    k = (size_t)sprintf(hidden, "<r>&undefined;<x");
    for (int i = 0; i < 40000; i++)
        k += (size_t)sprintf(hidden + k, " a%d=\"\"", i);
    strcpy(hidden + k, "/></r>");
    expect_refused(hidden, "element x has more than 32 attributes");
    free(hidden);
}

/* A tree of a million elements (a valid 4 MiB ds:Signature full of <a/>)
 * is never built; text runs and attribute values are bounded. */
static void test_element_and_text_caps(void **state)
{
    (void)state;
    size_t n = VTN_XML_MAX_ELEMENTS;
    char *d = malloc(n * 4 + 32);
    size_t k = (size_t)sprintf(d, "<r>");
    for (size_t i = 0; i < n - 1; i++, k += 4)
        memcpy(d + k, "<a/>", 4);
    strcpy(d + k, "</r>");
    expect_parsed(d);
    memcpy(d + k, "<a/></r>", 9);
    expect_refused(d, "more than 100000 elements in the document");
    free(d);

    size_t t = VTN_XML_MAX_TEXT;
    d = malloc(t + 64);
    strcpy(d, "<r>");
    memset(d + 3, 'x', t);
    strcpy(d + 3 + t, "</r>");
    expect_parsed(d);
    /* CDATA adds to the text around it. */
    strcpy(d + 3 + t, "<![CDATA[y]]></r>");
    expect_refused(d, "text longer than 65536 bytes");
    sprintf(d, "<r a=\"");
    memset(d + 6, 'x', t + 1);
    strcpy(d + 7 + t, "\"/>");
    expect_refused(d, "attribute value longer than 65536 bytes");
    free(d);
}

/* What the pre-scan must read like libxml2 does, so that real documents
 * pass: '>' and the other quote in values, markup-like text in comments,
 * CDATA sections and processing instructions, a BOM, UTF-16. */
static void test_caps_read_markup_right(void **state)
{
    (void)state;
    expect_parsed("\xef\xbb\xbf<?xml version='1.0' encoding='utf-8'?>\n"
                  "<!-- <e a=\"1\" b=\"2\"> --><r a=\"x>y\" b='\"' c = \"/>\">"
                  "<![CDATA[<x y=\"z\">]]><?pi a=\"b\" <c>?>a &gt; b</r >");
    expect_parsed("<r><!--> <a b=\"<\"> --></r>"); /* "<!-->" opens a comment */
    expect_refused("<r><!DOCTYPE r></r>", "DOCTYPE");
    expect_refused("<r a=\"<\"/>", "'<' in an attribute value");
    expect_refused("<r a=\"x\"b=\"y\"/>", "separated by white space");
    expect_refused("<r a/>", "attribute without a value");
    expect_refused("<r><!-- open</r>", "unterminated comment");
    expect_refused(" <?xml version=\"1.0\"?><r/>", "XML declaration not at the start");
    expect_refused("<?xml version=\"1.0\" encoding=\"UTF-7\"?><r/>",
                   "encoding UTF-7 is not accepted");
    expect_refused("<?xml version=\"1.0\" encoding=\"EBCDIC-US\"?><r/>", "is not accepted");
    expect_refused("\x4c\x6f\xa7\x94", "a document starts with '<'"); /* "<?xm" in EBCDIC */

    /* UTF-16LE, with and without a BOM: counted per 16-bit unit. */
    char u16[2048];
    const char *ok = "<r a=\"1\" b=\"2\">t</r>";
    size_t n = 0;
    u16[n++] = (char)0xff;
    u16[n++] = (char)0xfe;
    for (const char *p = ok; *p; p++) {
        u16[n++] = *p;
        u16[n++] = 0;
    }
    xmlDoc *doc = NULL;
    assert_int_equal(vtn_xml_parse(g_ctx, u16, n, &doc), 0);
    char t[8];
    assert_int_equal(vtn_xml_attr(xmlDocGetRootElement(doc), NULL, "b", t, sizeof t), 1);
    assert_string_equal(t, "2");
    xmlFreeDoc(doc);
    n = 0;
    char tag[16];
    const char *head = "<r";
    for (const char *p = head; *p; p++) {
        u16[n++] = *p;
        u16[n++] = 0;
    }
    for (int i = 0; i < 40; i++) {
        int w = snprintf(tag, sizeof tag, " a%d=\"\"", i);
        for (int j = 0; j < w; j++) {
            u16[n++] = tag[j];
            u16[n++] = 0;
        }
    }
    for (const char *p = "/>"; *p; p++) {
        u16[n++] = *p;
        u16[n++] = 0;
    }
    assert_int_equal(vtn_xml_parse(g_ctx, u16, n, &doc), -EBADMSG);
    assert_non_null(strstr(vtn_xml_error(g_ctx), "element r has more than 32 attributes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doctype_rejected),
        cmocka_unit_test(test_billion_laughs_rejected_fast),
        cmocka_unit_test(test_external_entity_rejected),
        cmocka_unit_test(test_deep_nesting_rejected),
        cmocka_unit_test(test_not_xml),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_cdata_and_encodings),
        cmocka_unit_test(test_prefix_variants),
        cmocka_unit_test(test_wrong_namespace),
        cmocka_unit_test(test_text_helpers),
        cmocka_unit_test(test_schema_from_memory),
        cmocka_unit_test(test_lockdown_and_official_schema),
        cmocka_unit_test(test_dictionary_rebuild),
        cmocka_unit_test(test_attribute_and_namespace_caps),
        cmocka_unit_test(test_element_and_text_caps),
        cmocka_unit_test(test_caps_read_markup_right),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
