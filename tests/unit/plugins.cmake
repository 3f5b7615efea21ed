# The kernel plug-ins' unit test, included from tests/CMakeLists.txt after the plug-ins' own
# directories (kernels/, examples/kernels/dice/) were added: it dlopens the .so files they
# build into ${CMAKE_BINARY_DIR}/kernels, primes.so only when libprimesieve was found.
if(NOT TARGET tally-kernel-dice)
  message(FATAL_ERROR "tests/unit/plugins.cmake: add_subdirectory(examples/kernels/dice) first")
endif()
find_package(Threads REQUIRED)
tally_unit(test_plugins ${CMAKE_DL_LIBS} Threads::Threads m)
target_include_directories(test_plugins PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../include)
target_compile_definitions(test_plugins PRIVATE TALLY_KERNEL_DIR="${CMAKE_BINARY_DIR}/kernels")
add_dependencies(test_plugins tally-kernel-dice)
if(TARGET tally-kernel-primes)
  target_compile_definitions(test_plugins PRIVATE TALLY_HAVE_PRIMES)
  add_dependencies(test_plugins tally-kernel-primes)
endif()
