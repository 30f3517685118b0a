# q3vl_add_layer(NAME DEPS ...): one static library per src/ folder, from every
# .cpp in it (new files need no CMake edit). Layers may only depend downward:
#   core <- io <- {text, vision, kernels} <- runtime <- builder <- tools
# (the builder runs packages through the runtime to calibrate GPTQ)
function(q3vl_add_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*.cpp")
  if(NOT sources)
    return()
  endif()
  # A layer folder with no sources yet has no target; depend only on layers that exist.
  set(deps)
  if(NOT name STREQUAL "core")
    list(APPEND deps q3vl_core)
  endif()
  foreach(dep ${ARG_DEPS})
    if(NOT dep MATCHES "^q3vl_" OR TARGET ${dep})
      list(APPEND deps ${dep})
    endif()
  endforeach()
  add_library(q3vl_${name} STATIC ${sources})
  target_include_directories(q3vl_${name}
    PUBLIC "${PROJECT_SOURCE_DIR}/include" "${PROJECT_SOURCE_DIR}/src")
  target_link_libraries(q3vl_${name} PUBLIC ${deps} PRIVATE q3vl_warnings)
endfunction()
