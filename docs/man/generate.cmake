# cmake -DHELP2MAN=... -DPROGRAM=... [-DCOMMAND=... | -DCOMMANDS=...] -DTITLE=... -DSECTION=... -DOUT=...
#       -P generate.cmake
# One man page from `PROGRAM [COMMAND] --help`, with the version of `PROGRAM --version`. Its one-line NAME is
# the program's own: the command's line in `weightbus --help`, or a fixed line for the two programs. COMMANDS
# (weightbus's page): the build fails unless they are exactly the commands `weightbus --help` lists.
execute_process(COMMAND ${PROGRAM} --version OUTPUT_VARIABLE version_text RESULT_VARIABLE rc)
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" version "${version_text}")
if(NOT rc EQUAL 0 OR NOT version)
  message(FATAL_ERROR "${PROGRAM} --version printed no version")
endif()
set(program "${PROGRAM}")
if(COMMAND)
  execute_process(COMMAND ${PROGRAM} --help OUTPUT_VARIABLE help)
  string(REGEX MATCH "\n  ${COMMAND} +([^\n]*)" line "${help}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "`weightbus --help` lists no command ${COMMAND}")
  endif()
  set(what "${CMAKE_MATCH_1}")
  set(program "${PROGRAM} ${COMMAND}")  # help2man runs it through the shell
elseif(TITLE STREQUAL "weightbusd")
  set(what "the weightbus broker: model weights and their versions shared on one node")
else()
  set(what "look into a weightbus broker, load and write checkpoints, map layouts")
  execute_process(COMMAND ${PROGRAM} --help OUTPUT_VARIABLE help)
  string(REGEX MATCH "\ncommands:\n(.*)\n\n" section "${help}")
  string(REGEX MATCHALL "\n  [a-z]+ " listed "\n${CMAKE_MATCH_1}")
  string(REGEX REPLACE "[\n ]" "" listed "${listed}")
  if(NOT listed STREQUAL COMMANDS)
    message(FATAL_ERROR "`weightbus --help` lists the commands '${listed}', docs/man/CMakeLists.txt '${COMMANDS}'")
  endif()
endif()
execute_process(COMMAND ${HELP2MAN} --no-info --section ${SECTION} --name "${what}" --version-string ${version}
                        "${program}"
                OUTPUT_VARIABLE page RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man of ${program}: ${err}")
endif()
string(TOUPPER "${TITLE}" upper)
string(REGEX REPLACE "\n\\.TH [^ ]+ " "\n.TH ${upper} " page "${page}")
file(WRITE ${OUT} "${page}")
