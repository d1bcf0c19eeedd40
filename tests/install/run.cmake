# Installs the build tree into a fresh prefix, builds the consumer project against it, and
# checks that the consumer and the installed `lasnet` print the same totals for the README's
# ResNet-101 query. Everything lives in one unique scratch folder, removed at the end.
# With -DPYTHON= and -DPYTHON_DIR= (the module's folder under the prefix), the installed Python
# module must print the same totals too.
#   -DBUILD_DIR= -DCONSUMER_DIR= -DCXX= -DSCRATCH_PARENT= [-DPYTHON= -DPYTHON_DIR=]
string(RANDOM LENGTH 10 tag)
set(scratch ${SCRATCH_PARENT}/install-test-${tag})
file(REMOVE_RECURSE ${scratch})
set(prefix ${scratch}/prefix)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    file(REMOVE_RECURSE ${scratch})
    message(FATAL_ERROR "${what} failed (${status}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run("configuring the consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${scratch}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
run("building the consumer" ${CMAKE_COMMAND} --build ${scratch}/consumer)
run("the consumer" ${scratch}/consumer/consumer)
set(consumer_out "${out}")
# The installed binary, run from elsewhere, finds its profiles in the prefix's share folder.
run("the installed lasnet" ${CMAKE_COMMAND} -E env --unset=LASNET_PROFILE_DIR
    ${prefix}/bin/lasnet predict ${prefix}/share/lasnet/examples/resnet101.json --hw v100
    --density 0.5 --granularity 4-4-2-1 --per stage)
set(cli_out "${out}")
set(outputs consumer)
if(PYTHON)
  # The 5-line script of docs/install.md.
  run("the installed Python module" ${CMAKE_COMMAND} -E env PYTHONPATH=${prefix}/${PYTHON_DIR}
      ${PYTHON} -c "import lasnet
r = lasnet.predict('${prefix}/share/lasnet/examples/resnet101.json', 'v100', density=0.5, granularity='4-4-2-1')
print(f\"dense   total: {r['dense']['latency_ms']:.4f} ms\")
print(f\"dynamic total: {r['dynamic']['latency_ms']:.4f} ms\")")
  set(python_out "${out}")
  list(APPEND outputs python)
endif()
file(REMOVE_RECURSE ${scratch})

foreach(kind dense dynamic)
  string(REGEX MATCH "${kind} +total: +([0-9.]+) ms" m "${cli_out}")
  set(from_cli "${CMAKE_MATCH_1}")
  foreach(output ${outputs})
    string(REGEX MATCH "${kind} +total: +([0-9.]+) ms" m "${${output}_out}")
    if(CMAKE_MATCH_1 STREQUAL "" OR NOT CMAKE_MATCH_1 STREQUAL from_cli)
      message(FATAL_ERROR "${kind} total: ${output} '${CMAKE_MATCH_1}', lasnet '${from_cli}'\n"
                          "${output}:\n${${output}_out}\nlasnet:\n${cli_out}")
    endif()
  endforeach()
  message(STATUS "${kind} total ${from_cli} ms from lasnet and ${outputs}")
endforeach()
