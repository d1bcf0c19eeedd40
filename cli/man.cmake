# Writes the man page lasnet.1 with help2man (run by cli/CMakeLists.txt's lasnet_man target):
# help2man renders `lasnet --help`; an include file it reads adds a SUBCOMMANDS section with
# every subcommand's own --help (nested ones such as `hw list` too) and SEE ALSO. Nothing here
# is written by hand, so the page cannot drift from the binary.
#   cmake -DLASNET=path/to/lasnet -DHELP2MAN=path/to/help2man -DOUT=lasnet.1 -P man.cmake

function(help_of out_var)
  execute_process(COMMAND ${LASNET} ${ARGN} --help OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "man.cmake: `lasnet ${ARGN} --help` failed (${rc})")
  endif()
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# CLI11 lists subcommands after "Subcommands:", one "  name   description" per line, up to the
# next blank line.
function(subcommands_of text out_var)
  set(names "")
  string(FIND "${text}" "\nSubcommands:\n" at)
  if(NOT at EQUAL -1)
    math(EXPR at "${at} + 13")
    string(SUBSTRING "${text}" ${at} -1 section)
    string(FIND "${section}" "\n\n" end)
    if(NOT end EQUAL -1)
      string(SUBSTRING "${section}" 0 ${end} section)
    endif()
    string(REGEX MATCHALL "\n  [a-z][a-z0-9_-]*" found "${section}")
    foreach(name IN LISTS found)
      string(STRIP "${name}" name)
      list(APPEND names ${name})
    endforeach()
  endif()
  set(${out_var} ${names} PARENT_SCOPE)
endfunction()

# The help text as literal roff: backslashes escaped, lines that start with a control character
# protected.
function(roff_literal text out_var)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "\n([.'])" "\n\\\\&\\1" text "\n${text}")
  string(REGEX REPLACE "^\n" "" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

function(add_command_section include_var)
  string(JOIN " " title lasnet ${ARGN})
  help_of(text ${ARGN})
  roff_literal("${text}" text)
  set(${include_var} "${${include_var}}.SS \"${title}\"\n.nf\n${text}.fi\n" PARENT_SCOPE)
endfunction()

help_of(main_help)
subcommands_of("${main_help}" commands)
if(NOT commands)
  message(FATAL_ERROR "man.cmake: `lasnet --help` lists no subcommands")
endif()
set(include "[SUBCOMMANDS]\nEach subcommand's own \\fB--help\\fR:\n")
set(names "")
foreach(command IN LISTS commands)
  add_command_section(include ${command})
  help_of(text ${command})
  subcommands_of("${text}" children)
  foreach(child IN LISTS children)
    add_command_section(include ${command} ${child})
  endforeach()
endforeach()
string(APPEND include "[EXIT STATUS]\n0 success; 2 a user error (bad input, bad option, an existing "
       "output without \\fB--force\\fR, no GPU for a GPU command), with one message naming the "
       "file and the JSON path; 3 an internal error.\n"
       "[SEE ALSO]\nREADME.md and docs/ in the source tree: docs/errors.md lists every message, "
       "docs/scheduler.md, docs/profiler.md, docs/import.md and docs/predict-json.md describe the "
       "commands and their outputs.\n")
get_filename_component(dir "${OUT}" DIRECTORY)
file(WRITE "${dir}/lasnet.h2m" "${include}")
execute_process(
  COMMAND ${HELP2MAN} --no-info --no-discard-stderr
          "--name=predict and optimise the latency of spatially dynamic CNNs on GPUs"
          "--include=${dir}/lasnet.h2m" "--output=${OUT}" ${LASNET}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "man.cmake: help2man failed (${rc})")
endif()
