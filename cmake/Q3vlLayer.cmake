# q3vl_add_layer(NAME DEPS ...): one static library per src/ folder, from every
# .cpp in it (new files need no CMake edit). Layers may only depend downward:
#   core <- io <- {text, vision} <- builder, runtime <- tools
function(q3vl_add_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*.cpp")
  if(NOT sources)
    return()
  endif()
  add_library(q3vl_${name} STATIC ${sources})
  target_include_directories(q3vl_${name}
    PUBLIC "${PROJECT_SOURCE_DIR}/include" "${PROJECT_SOURCE_DIR}/src")
  target_link_libraries(q3vl_${name} PUBLIC ${ARG_DEPS} PRIVATE q3vl_warnings)
endfunction()
