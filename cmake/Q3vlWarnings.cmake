# Compiler flags shared by every q3vl target (not by third-party code).
add_library(q3vl_warnings INTERFACE)
target_compile_options(q3vl_warnings INTERFACE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
                       -Wcast-align -Woverloaded-virtual -Wno-missing-field-initializers)
# GCC 12 reports false -Wrestrict positives inside libstdc++'s std::string
# concatenation at -O2/-O3 (GCC bug 105329); the warning stays on for other compilers.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(q3vl_warnings INTERFACE -Wno-restrict)
endif()
if(Q3VL_WERROR)
  target_compile_options(q3vl_warnings INTERFACE -Werror)
endif()
if(Q3VL_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "Q3VL_FUZZ needs clang (libFuzzer), e.g. -DCMAKE_CXX_COMPILER=clang++-16")
  endif()
  set(Q3VL_SANITIZE ON)
  # Coverage feedback for every q3vl library; the fuzz executables add the
  # libFuzzer driver (-fsanitize=fuzzer) at link time.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
if(Q3VL_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
if(Q3VL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
