# cmake -DINPUT=page.html -DOUTPUT=page.cpp -P embed_page.cmake
# Writes chat_page_html() returning the file's bytes. The text goes in as raw-string
# pieces under 16 KB each (compilers limit one literal), split on a delimiter the page
# cannot contain.
file(READ "${INPUT}" html)
string(FIND "${html}" ")q3vl\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )q3vl\"")
endif()
string(LENGTH "${html}" length)
set(pieces "")
set(offset 0)
while(offset LESS length)
  string(SUBSTRING "${html}" ${offset} 8000 piece)
  string(APPEND pieces "  R\"q3vl(${piece})q3vl\"\n")
  math(EXPR offset "${offset} + 8000")
endwhile()
file(WRITE "${OUTPUT}.tmp"
"// Generated from chat_page.html by embed_page.cmake; do not edit.
#include \"server/chat_page.h\"

namespace q3vl::server {

const std::string& chat_page_html() {
  static const std::string page =
${pieces}  ;
  return page;
}

}  // namespace q3vl::server
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
