# memlink_mutant_library(<target> <mutant>)
#
# A static library of the reference (the testing build: live crash points)
# with one mutant of the catalog, conformance/mutants/catalog.toml, compiled
# in: the broken implementation that a ctest proof (*-catches-*) runs a check
# against. This is the build's one way to break the reference on purpose, the
# same bugs scripts/mutate measures the suite with; ref/ holds no test-only
# switch.
#
# The mutant's files are written at configure time by
# conformance/mutants/emit.py into <build>/mutants/<mutant>/, and the library
# is memlink_shm_testing_objects' object files with those files' objects
# replaced, so a proof costs one compiled file. The catalog and the edited
# sources are configure dependencies: an edit of either re-runs the emit.
#
# Sets <target>_BUILT in the caller's scope. It is FALSE only in
# scripts/mutate's mirror (MEMLINK_MUTANT_MIRROR in the environment) when the
# mutant under test has already rewritten this mutant's text: the proofs that
# need it are skipped there. Anywhere else, a mutant that does not apply is a
# configure error (scripts/mutate --check says the same).
#
# MEMLINK_MUTANT_CATALOG and MEMLINK_MUTANT_ROOT (the tree the edits apply
# to) default to this project's; cmake/tests/mutant_skip points them at a
# fixture to test the skip.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
set(MEMLINK_MUTANT_EMIT ${CMAKE_CURRENT_LIST_DIR}/../conformance/mutants/emit.py)

function(memlink_mutant_library target mutant)
  if(TARGET ${target})
    set(${target}_BUILT TRUE PARENT_SCOPE)
    return()
  endif()
  set(catalog ${PROJECT_SOURCE_DIR}/conformance/mutants/catalog.toml)
  if(DEFINED MEMLINK_MUTANT_CATALOG)
    set(catalog ${MEMLINK_MUTANT_CATALOG})
  endif()
  set(root ${PROJECT_SOURCE_DIR})
  if(DEFINED MEMLINK_MUTANT_ROOT)
    set(root ${MEMLINK_MUTANT_ROOT})
  endif()
  set(out ${PROJECT_BINARY_DIR}/mutants/${mutant})
  execute_process(
    COMMAND ${Python3_EXECUTABLE} ${MEMLINK_MUTANT_EMIT} --catalog ${catalog} --root ${root} --out ${out} ${mutant}
    OUTPUT_VARIABLE files ERROR_VARIABLE err RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${catalog} ${MEMLINK_MUTANT_EMIT})
  if(rc EQUAL 3 AND DEFINED ENV{MEMLINK_MUTANT_MIRROR})
    message(STATUS "mutant ${mutant} does not apply to this mirror: its proofs are skipped (${err})")
    set(${target}_BUILT FALSE PARENT_SCOPE)
    return()
  elseif(NOT rc EQUAL 0)
    message(FATAL_ERROR "memlink_mutant_library(${target} ${mutant}): ${err}")
  endif()
  string(REPLACE "\n" ";" files "${files}")
  set(objects $<TARGET_OBJECTS:memlink_shm_testing_objects>)
  set(sources)
  foreach(file ${files})
    if(NOT file MATCHES "^ref/.*\\.cpp$")
      message(FATAL_ERROR "memlink_mutant_library(${target} ${mutant}): edits ${file}; "
                          "only ref/'s .cpp files can be swapped into a library")
    endif()
    set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${root}/${file})
    get_filename_component(name ${file} NAME)
    string(REPLACE "." "\\." name_regex "${name}")
    # The object of the original file (<dir>/<name>.o, or .obj on Windows) is left out.
    set(objects "$<FILTER:${objects},EXCLUDE,/${name_regex}\\.(o|obj)$>")
    list(APPEND sources ${out}/${file})
  endforeach()
  add_library(${target} STATIC ${sources} ${objects})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/ref)
  target_compile_definitions(${target} PUBLIC MEMLINK_TESTING_HOOKS)
  target_link_libraries(${target} PUBLIC Threads::Threads)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-tsan)
  endif()
  set(${target}_BUILT TRUE PARENT_SCOPE)
endfunction()

# memlink_mutant_program(<exe> <mutant> <source> <library>...)
#
# An executable of <source> that runs the reference with <mutant> compiled
# in: memlink_mutant_library's library, linked whole and first, so that its
# objects define every symbol of the reference and the memlink_shm_testing
# that <library>... bring along contributes none. Sets <exe>_BUILT like
# memlink_mutant_library (and builds <exe> once, however often it is named).
function(memlink_mutant_program exe mutant source)
  string(REPLACE "-" "_" id ${mutant})
  memlink_mutant_library(memlink_shm_${id} ${mutant})
  set(${exe}_BUILT ${memlink_shm_${id}_BUILT} PARENT_SCOPE)
  if(NOT memlink_shm_${id}_BUILT OR TARGET ${exe})
    return()
  endif()
  add_executable(${exe} ${source})
  target_link_libraries(${exe} PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,memlink_shm_${id}>" ${ARGN})
endfunction()
