# Turns every file of a folder that matches a glob into bytes in one
# generated C file: a table of {name, bytes, length} rows, so a binary needs
# no path at run time. Used for schemas/*.xsd and common/lua/*.lua.
#   cmake -DDIR=<folder> -DGLOB=<*.ext> -DOUT=<file.c> -DHEADER=<header.h>
#         -DTYPE=<row type> -DPREFIX=<name> -P embed.cmake
# defines `const TYPE PREFIX_files[]` and `const size_t PREFIX_nfiles`.
get_filename_component(DIR "${DIR}" ABSOLUTE)
file(GLOB files RELATIVE ${DIR} ${DIR}/${GLOB})
list(SORT files)
get_filename_component(dirname "${DIR}" NAME)
set(body "/* Generated from the ${GLOB} files in ${dirname} by cmake/embed.cmake; do not edit. */\n")
string(APPEND body "#include \"${HEADER}\"\n\n")
set(table "")
set(i 0)
foreach(f ${files})
  file(READ ${DIR}/${f} hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR n "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # 16 bytes a line (CMake's regex has no {n}, hence the spelled-out pattern).
  string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line16)
  string(REGEX REPLACE "(${line16})" "\\1\n    " bytes "${bytes}")
  string(APPEND body "static const unsigned char f${i}[${n}] = {\n    ${bytes}\n};\n")
  string(APPEND table "    {\"${f}\", f${i}, ${n}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "\nconst ${TYPE} ${PREFIX}_files[] = {\n${table}};\n")
string(APPEND body "const size_t ${PREFIX}_nfiles = ${i};\n")
# Only rewrite when the content changed, so dependents do not rebuild.
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL body)
    return()
  endif()
endif()
file(WRITE ${OUT} "${body}")
