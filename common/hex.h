/*
 * hex.h - lower-case hex encoding and decoding, the one copy in the tree.
 *
 * Digests (SHA-256, MD5), ETags, random names and JSON binary values are all
 * written with these; nothing here allocates or fails except hex_decode() on
 * input that is not exactly 2*n hex digits.
 */
#ifndef INGESTA_HEX_H
#define INGESTA_HEX_H

#include <stddef.h>

/* Value of one hex digit (either case), or -1. */
int hex_digit(int c);

/* Write 2*n lower-case hex digits of in[0..n) at out, no NUL; returns the end
 * (out + 2*n). */
char *hex_put(char *out, const void *in, size_t n);

/* hex_put() plus a NUL: out needs 2*n + 1 bytes. */
void hex_encode(const void *in, size_t n, char *out);

/* Exactly 2*n hex digits (either case) -> n bytes. Returns 0, or -1 (out
 * unspecified) when hex is NULL, has another length or a non-hex digit. */
int hex_decode(const char *hex, unsigned char *out, size_t n);

#endif
