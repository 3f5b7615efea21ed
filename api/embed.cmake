# Writes OUT, a C file defining NAME[] (the bytes of IN) and NAME_len:
#   cmake -DIN=api/dashboard.html -DOUT=dashboard_html.c -DNAME=dashboard_html -P api/embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n\t" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from ${IN} by api/embed.cmake: do not edit. */\n#include <stddef.h>\n"
  "const unsigned char ${NAME}[] = {\n\t${bytes}0x00\n};\nconst size_t ${NAME}_len = ${len};\n")
