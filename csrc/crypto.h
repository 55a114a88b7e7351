/* crypto.h - what shelfd asks of OpenSSL's libcrypto: random bytes, SHA-256
 * and base64url. Nothing here is written by hand but the translation between
 * base64 and its URL-safe alphabet. Used by auth.c for PKCE (RFC 7636), the
 * sign-in `state`, and reading the role of a legacy JWT key. Strings and
 * bytes returned are the caller's to free; the rest write into the
 * caller's buffers. */
#ifndef SHELF_CRYPTO_H
#define SHELF_CRYPTO_H

#include <stddef.h>

/* n cryptographically random bytes into out. 0, or -1 if OpenSSL fails. */
int crypto_random(unsigned char *out, size_t n);

/* base64url of data without padding (RFC 4648 section 5), NUL-terminated.
 * The caller frees. */
char *crypto_b64url(const unsigned char *data, size_t n);

/* Decode base64url (padding optional). Returns the bytes NUL-terminated
 * (*n excludes the NUL; the caller frees), or NULL if s is not base64url or
 * longer than 64 KiB. */
unsigned char *crypto_b64url_decode(const char *s, size_t *n);

/* A PKCE pair: verifier = base64url of 32 random bytes (43 characters);
 * challenge = base64url(SHA-256(verifier)) (the S256 method). Both are
 * NUL-terminated in the caller's buffers. 0, or -1 if OpenSSL fails. */
#define CRYPTO_PKCE_LEN 43
int crypto_pkce(char verifier[CRYPTO_PKCE_LEN + 1], char challenge[CRYPTO_PKCE_LEN + 1]);

/* The S256 challenge of a given verifier into challenge. 0 or -1. */
int crypto_pkce_challenge(const char *verifier, char challenge[CRYPTO_PKCE_LEN + 1]);

#endif
