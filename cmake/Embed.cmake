# prime_embed(<target> <symbol> [BASE <dir>] <files>...)
#
# Compiles the files into <target> as a table of {name, bytes, length} so that
# programs carry their schemas and migrations and never look for them on disk
# at run time. The table is `const prime_embedded_file_t <symbol>[]`, ended by
# an entry whose name is NULL, sorted by file name. A name is the file's
# path relative to BASE ("project.saved/v2.avsc"), or its bare name without
# BASE.
function(prime_embed target symbol)
  cmake_parse_arguments(E "" "BASE" "" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${symbol}.c")
  set(files ${E_UNPARSED_ARGUMENTS})
  list(SORT files)
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSYMBOL=${symbol} "-DFILES=${files}" "-DBASE=${E_BASE}"
            -P "${PROJECT_SOURCE_DIR}/cmake/EmbedScript.cmake"
    DEPENDS ${files} "${PROJECT_SOURCE_DIR}/cmake/EmbedScript.cmake"
    COMMENT "Embedding ${symbol}"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
