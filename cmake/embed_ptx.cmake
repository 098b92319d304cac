# cmake -DINPUT=kernel.ptx -DOUTPUT=file.cpp -DSYMBOL=name -P embed_ptx.cmake: writes the file (PTX, or a fat
# binary) as wb::cuda::name (kCopyKernelPtx without SYMBOL), a NUL-terminated byte array (cuModuleLoadData takes
# PTX as a C string, and a fat binary as it is). Bytes, not a string literal, so that nothing needs escaping.
if(NOT SYMBOL)
  set(SYMBOL kCopyKernelPtx)
endif()
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by cmake/embed_ptx.cmake.\n"
                       "namespace wb::cuda {\n"
                       "extern const unsigned char ${SYMBOL}[] = {${bytes}0x00};\n"
                       "}  // namespace wb::cuda\n")
