/* The project's OpenADR schemas (every .xsd in schemas/), embedded at build time by
 * cmake/embed.cmake; oadr.xsd is the main file, the others are imported. */
#ifndef WK_SCHEMAS_H
#define WK_SCHEMAS_H

#include <stddef.h>

#include "vtn/xml.h"

#define WK_SCHEMA_MAIN "oadr.xsd"

extern const vtn_xml_file wk_schema_files[];
extern const size_t wk_schema_nfiles;

#endif
