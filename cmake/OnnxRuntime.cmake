# Imported target q3vl::onnxruntime: ONNX Runtime's C/C++ headers + libonnxruntime.so.
# Default location is what scripts/setup.sh fetches (third_party/ort); -DORT_ROOT=DIR
# or the ORT_ROOT environment variable points at an installation the user already has
# (DIR/include[/onnxruntime]/onnxruntime_cxx_api.h and DIR/lib[64]/libonnxruntime.so*).
if(NOT ORT_ROOT AND DEFINED ENV{ORT_ROOT})
  set(ORT_ROOT "$ENV{ORT_ROOT}")
endif()
if(NOT ORT_ROOT)
  set(ORT_ROOT "${Q3VL_THIRD_PARTY_DIR}/ort")
endif()
set(ORT_ROOT "${ORT_ROOT}" CACHE PATH "ONNX Runtime installation (include/ + lib/)")

find_path(ORT_INCLUDE_DIR onnxruntime_cxx_api.h
          PATHS "${ORT_ROOT}/include" "${ORT_ROOT}/include/onnxruntime" NO_DEFAULT_PATH)
find_library(ORT_LIBRARY NAMES onnxruntime libonnxruntime.so.1
             PATHS "${ORT_ROOT}/lib" "${ORT_ROOT}/lib64" NO_DEFAULT_PATH)
if(NOT ORT_INCLUDE_DIR OR NOT ORT_LIBRARY)
  message(FATAL_ERROR "ONNX Runtime not found under ORT_ROOT=${ORT_ROOT} "
                      "(need include/onnxruntime_cxx_api.h and lib/libonnxruntime.so). "
                      "Run scripts/setup.sh, or set ORT_ROOT to your installation.")
endif()
add_library(q3vl::onnxruntime SHARED IMPORTED GLOBAL)
set_target_properties(q3vl::onnxruntime PROPERTIES
  IMPORTED_LOCATION "${ORT_LIBRARY}"
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${ORT_INCLUDE_DIR}"
  INTERFACE_INCLUDE_DIRECTORIES "${ORT_INCLUDE_DIR}")
get_filename_component(ORT_LIBRARY_DIR "${ORT_LIBRARY}" DIRECTORY)
message(STATUS "ONNX Runtime: ${ORT_LIBRARY}")
