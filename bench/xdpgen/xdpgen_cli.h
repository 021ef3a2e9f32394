// Command-line and map-reading helpers shared by eipgate-xdpgen and eipgate-xdpsink (C, static
// functions: each tool is one translation unit).
#ifndef EIPGATE_BENCH_XDPGEN_CLI_H_
#define EIPGATE_BENCH_XDPGEN_CLI_H_

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char* g_prog = "eipgate-xdpgen";

__attribute__((format(printf, 1, 2), noreturn)) static inline void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", g_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static inline uint64_t parse_u64(const char* opt, const char* s, uint64_t min, uint64_t max) {
  char* endp = NULL;
  errno = 0;
  const unsigned long long v = strtoull(s, &endp, 0);
  if (errno != 0 || endp == s || *endp != '\0' || s[0] == '-' || v < min || v > max) {
    die("--%s: '%s' is not an integer in [%llu, %llu]", opt, s, (unsigned long long)min,
        (unsigned long long)max);
  }
  return v;
}

static inline double parse_seconds(const char* opt, const char* s) {
  char* endp = NULL;
  errno = 0;
  const double v = strtod(s, &endp);
  if (errno != 0 || endp == s || *endp != '\0' || !(v >= 0) || v > 86400) {
    die("--%s: '%s' is not a number of seconds in [0, 86400]", opt, s);
  }
  return v;
}

// Network byte order.
static inline uint32_t parse_ipv4(const char* opt, const char* s) {
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1) die("--%s: '%s' is not an IPv4 address", opt, s);
  return a.s_addr;
}

static inline void parse_mac(const char* opt, const char* s, uint8_t mac[6]) {
  unsigned int b[6];
  char tail;
  if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) {
    die("--%s: '%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", opt, s);
  }
  for (int i = 0; i < 6; i++) {
    if (b[i] > 0xff) die("--%s: '%s' is not a MAC address", opt, s);
    mac[i] = (uint8_t)b[i];
  }
}

static inline double mono_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif  // EIPGATE_BENCH_XDPGEN_CLI_H_
