# Runs `${LASNET} ${ARGS}` and checks the no-GPU contract: exit status 2 and a message that says
# a GPU (or GPU support) is missing.
execute_process(COMMAND ${LASNET} ${ARGS} RESULT_VARIABLE status OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT status EQUAL 2)
  message(FATAL_ERROR "expected exit status 2, got '${status}'\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT err MATCHES "(no CUDA device|no GPU support)")
  message(FATAL_ERROR "the message does not say that a GPU is missing:\n${err}")
endif()
message(STATUS "exit 2 with: ${err}")
