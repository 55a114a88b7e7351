/* tls_front.h - TLS for tests without a network: certificate authorities
 * and server certificates made at run time with the openssl command, and a
 * TLS front (tests/stack/tls-proxy.mjs, run by node) that passes the bytes
 * of its connections through to a plain local server. */
#ifndef SHELF_TLS_FRONT_H
#define SHELF_TLS_FRONT_H

#include <sys/types.h>

/* In dir, a CA "<name>-ca.pem" (its key "<name>-ca.key") and a certificate
 * for localhost it signed, "<name>.pem" with its key "<name>.key". 0 or -1. */
int tls_make_ca_and_cert(const char *dir, const char *name);

/* Start a TLS front on 127.0.0.1 for 127.0.0.1:target_port with the
 * certificate dir/<name>.pem. Its port, or -1; *pid is the process to
 * tls_front_stop. */
int tls_front_start(const char *dir, const char *name, int target_port, pid_t *pid);
void tls_front_stop(pid_t pid);

#endif
