# cmake -DBATON=<baton binary> -DHELP2MAN=<help2man> -DVERSION=<x.y.z> -DOUT=<baton.1> -P BatonManPage.cmake
#
# Writes baton(1) with help2man from `baton --help`, plus a COMMANDS section
# holding every subcommand's own --help, so the man page says exactly what
# the CLI says. help2man honours SOURCE_DATE_EPOCH (reproducible builds).
foreach(var BATON HELP2MAN VERSION OUT)
  if(NOT ${var})
    message(FATAL_ERROR "BatonManPage.cmake: -D${var}= is required")
  endif()
endforeach()

execute_process(COMMAND ${BATON} --help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BATON} --help failed (${rc})")
endif()
# The subcommands, as CLI11 lists them: "Subcommands:" then one indented
# line each, up to a blank line.
string(REGEX MATCH "\n[Ss][Uu][Bb][Cc][Oo][Mm][Mm][Aa][Nn][Dd][Ss]:\n([^\n]+\n)+" listing "${top}")
string(REGEX MATCHALL "\n  [a-z][a-z-]*" names "${listing}")
if(NOT names)
  message(FATAL_ERROR "no subcommands found in `${BATON} --help`:\n${top}")
endif()

# The exit codes footer, which every subcommand's help repeats: the page
# shows it once, in the main part.
string(FIND "${top}" "\nExit codes:" at)
set(footer "")
if(at GREATER -1)
  string(SUBSTRING "${top}" ${at} -1 footer)
endif()

get_filename_component(dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
set(include "[COMMANDS]\nEach command's own \\fB--help\\fR:\n")
foreach(name IN LISTS names)
  string(STRIP "${name}" name)
  execute_process(COMMAND ${BATON} ${name} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${BATON} ${name} --help failed (${rc})")
  endif()
  string(REPLACE "${BATON} " "baton " help "${help}")  # CLI11 prints argv[0]
  if(footer)
    string(REPLACE "${footer}" "\n" help "${help}")
  endif()
  # Verbatim roff: backslashes escaped, no line may start a request.
  string(REPLACE "\\" "\\e" help "${help}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
  string(APPEND include ".SS \"baton ${name}\"\n.nf\n${help}.fi\n")
endforeach()
string(APPEND include "[SEE ALSO]\nThe operations guide (docs/operations.md) and the protocol (docs/protocol.md), "
                      "installed with the package's documentation.\n")
file(WRITE "${OUT}.h2m" "${include}")

execute_process(
  COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1 --version-string=${VERSION}
          "--name=zero-downtime binary upgrades of stateful daemons" --include=${OUT}.h2m --output=${OUT}.tmp
          ${BATON}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed (${rc}): ${err}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
