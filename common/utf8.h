/* UTF-8 validity for text that echoes input (error messages quote what a client sent, cut to a
 * size that may fall inside a character). Pure C. */
#ifndef TALLY_UTF8_H
#define TALLY_UTF8_H

/* Makes s valid UTF-8 in place: each byte of a malformed or truncated sequence (overlong forms,
 * surrogates and code points past U+10FFFF included) becomes '?'. Can't fail. */
void utf8_scrub(char *s);

#endif
