/* crypto.c - random bytes, SHA-256 and base64url through OpenSSL (see
 * crypto.h). The only code of our own is the alphabet swap base64 <->
 * base64url, which OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock do not do. */
#include "crypto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CRYPTO_MAX_DECODE (64u << 10)

int crypto_random(unsigned char *out, size_t n) {
  return n <= (size_t)0x7fffffff && RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}

char *crypto_b64url(const unsigned char *data, size_t n) {
  char *out = util_malloc(4 * ((n + 2) / 3) + 1);
  int len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
  while (len > 0 && out[len - 1] == '=')
    len--;
  out[len] = '\0';
  for (int i = 0; i < len; i++) {
    if (out[i] == '+')
      out[i] = '-';
    else if (out[i] == '/')
      out[i] = '_';
  }
  return out;
}

unsigned char *crypto_b64url_decode(const char *s, size_t *n) {
  size_t len = strlen(s);
  while (len > 0 && s[len - 1] == '=')
    len--;
  if (len > CRYPTO_MAX_DECODE || len % 4 == 1)
    return NULL;
  /* Back to the standard alphabet with padding, which EVP_DecodeBlock wants. */
  size_t padded = (len + 3) / 4 * 4;
  char *std = util_malloc(padded + 1);
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == '+' || c == '/') {
      free(std);
      return NULL; /* standard base64, not base64url */
    }
    std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  for (size_t i = len; i < padded; i++)
    std[i] = '=';
  std[padded] = '\0';
  unsigned char *out = util_malloc(padded / 4 * 3 + 1);
  int got = padded ? EVP_DecodeBlock(out, (unsigned char *)std, (int)padded) : 0;
  free(std);
  if (got < 0) {
    free(out);
    return NULL;
  }
  /* EVP_DecodeBlock counts the padding as zero bytes: take them off. */
  size_t real = (size_t)got - (padded - len);
  out[real] = '\0';
  *n = real;
  return out;
}

int crypto_pkce_challenge(const char *verifier, char challenge[CRYPTO_PKCE_LEN + 1]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_Digest(verifier, strlen(verifier), digest, &dlen, EVP_sha256(), NULL) != 1 ||
      dlen != 32)
    return -1;
  char *b = crypto_b64url(digest, dlen);
  snprintf(challenge, CRYPTO_PKCE_LEN + 1, "%s", b);
  free(b);
  return 0;
}

int crypto_pkce(char verifier[CRYPTO_PKCE_LEN + 1], char challenge[CRYPTO_PKCE_LEN + 1]) {
  unsigned char raw[32];
  if (crypto_random(raw, sizeof raw) < 0)
    return -1;
  char *v = crypto_b64url(raw, sizeof raw);
  explicit_bzero(raw, sizeof raw);
  snprintf(verifier, CRYPTO_PKCE_LEN + 1, "%s", v);
  explicit_bzero(v, strlen(v));
  free(v);
  return crypto_pkce_challenge(verifier, challenge);
}
