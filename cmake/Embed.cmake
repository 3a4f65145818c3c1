# prime_embed(<target> <symbol> <files>...)
#
# Compiles the files into <target> as a table of {name, bytes, length} so that
# programs carry their schemas and migrations and never look for them on disk
# at run time. The table is `const prime_embedded_file_t <symbol>[]`, ended by
# an entry whose name is NULL, sorted by file name.
function(prime_embed target symbol)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${symbol}.c")
  set(files ${ARGN})
  list(SORT files)
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSYMBOL=${symbol} "-DFILES=${files}"
            -P "${PROJECT_SOURCE_DIR}/cmake/EmbedScript.cmake"
    DEPENDS ${files} "${PROJECT_SOURCE_DIR}/cmake/EmbedScript.cmake"
    COMMENT "Embedding ${symbol}"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
