# ctest mutant-library-skips-only-in-the-mirror (cmake -DWORK=<dir> -P):
# memlink_mutant_library() skips a proof whose mutant does not apply only in
# scripts/mutate's mirror (MEMLINK_MUTANT_MIRROR set); anywhere else that is
# a configure error naming the mutant and the text it could not find.
set(fixture ${CMAKE_CURRENT_LIST_DIR}/mutant_skip)
file(REMOVE_RECURSE ${WORK})

function(configure label out_rc out_text)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${fixture} -B ${WORK}/${label}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
  set(${out_rc} ${rc} PARENT_SCOPE)
  set(${out_text} "${o}${e}" PARENT_SCOPE)
endfunction()

set(ENV{MEMLINK_MUTANT_MIRROR} 1)
configure(mirror rc text)
if(NOT rc EQUAL 0 OR NOT text MATCHES "mutant counter-off-by-one does not apply to this mirror: its proofs are skipped"
   OR NOT text MATCHES "broken_fixture_BUILT=FALSE")
  message(FATAL_ERROR "in the mirror, a mutant that does not apply must be skipped (exit ${rc}):\n${text}")
endif()

unset(ENV{MEMLINK_MUTANT_MIRROR})
configure(tree rc text)
if(rc EQUAL 0 OR NOT text MATCHES "memlink_mutant_library\\(broken_fixture counter-off-by-one\\)"
   OR NOT text MATCHES "occurs 0 times")
  message(FATAL_ERROR "outside the mirror, a mutant that does not apply must fail the configure (exit ${rc}):\n${text}")
endif()
message(STATUS "skipped in the mirror, a configure error elsewhere")
