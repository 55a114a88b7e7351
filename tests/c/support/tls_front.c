/* tls_front.c - run-time test CAs and a TLS front for local test servers
 * (see tls_front.h). Needs the openssl command and node, both installed by
 * the test set-up; a missing one fails the test that asked for it. */
#include "tls_front.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int tls_make_ca_and_cert(const char *dir, const char *name) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout %s-ca.key -out %s-ca.pem -days 2 -subj /CN=%s-test-ca 2>/dev/null && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout %s.key -out %s.csr -subj /CN=localhost 2>/dev/null && "
           "printf 'subjectAltName=DNS:localhost\\n' > %s.ext && "
           "openssl x509 -req -in %s.csr -CA %s-ca.pem -CAkey %s-ca.key -CAcreateserial "
           "-out %s.pem -days 2 -extfile %s.ext 2>/dev/null",
           dir, name, name, name, name, name, name, name, name, name, name, name);
  return system(cmd) == 0 ? 0 : -1;
}

int tls_front_start(const char *dir, const char *name, int target_port, pid_t *pid) {
  char cert[1024], key[1024], port[16];
  snprintf(cert, sizeof cert, "%s/%s.pem", dir, name);
  snprintf(key, sizeof key, "%s/%s.key", dir, name);
  snprintf(port, sizeof port, "%d", target_port);
  int p[2];
  if (pipe(p) < 0)
    return -1;
  *pid = fork();
  if (*pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (*pid == 0) {
    /* A test that fails leaves by longjmp and exit: the front goes too. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execlp("node", "node", SHELF_SOURCE_DIR "/tests/stack/tls-proxy.mjs", cert, key, port,
           (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  /* It prints "PORT <n>\n" once it listens. */
  char line[64];
  size_t n = 0;
  while (n + 1 < sizeof line) {
    ssize_t r = read(p[0], line + n, 1);
    if (r <= 0 || line[n] == '\n')
      break;
    n++;
  }
  line[n] = '\0';
  close(p[0]);
  int listen_port = -1;
  if (sscanf(line, "PORT %d", &listen_port) != 1) {
    tls_front_stop(*pid);
    return -1;
  }
  return listen_port;
}

void tls_front_stop(pid_t pid) {
  if (pid <= 0)
    return;
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
}
