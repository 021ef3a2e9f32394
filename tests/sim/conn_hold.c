// conn_hold: many simultaneous TCP connections for tests/sim/many_conns.sh.
//
//   conn_hold serve ADDR PORT STATUS_FILE
//       Echo server: accepts (epoll, nonblocking) until out of descriptors, echoes every byte,
//       rewrites STATUS_FILE once a second as one JSON line: open connections, accepted, closed,
//       "full" (ran out of descriptors), and the open connections per peer address (the NAT's
//       outside addresses as the internet sees them). SO_REUSEPORT: several servers on one
//       address:port share the connections (the kernel hashes each to one of them).
//   conn_hold hold DST_ADDR DST_PORT SRC_IP:COUNT[:FIRST_PORT][,...] CTL_FIFO EVENTS_FILE
//       Opens COUNT connections from each source address to DST, each bound explicitly to its own
//       source port (FIRST_PORT, default 1024, upward: no dependence on ip_local_port_range or
//       the kernel's ephemeral search), at most CONN_HOLD_INFLIGHT (default 4096) connects in
//       flight and CONN_HOLD_RATE (default unlimited) started per second, and holds them. Appends
//       JSON lines to EVENTS_FILE: "progress" every 5 s, "open" once every connect has finished,
//       then one line per command read from CTL_FIFO:
//         check N SEED   send 8 bytes on N random open connections, wait (up to 30 s) for the
//                        same 8 bytes back: {"event":"check","sampled","echoed","failed",...}
//         count          {"event":"count","open","closed","unexpected"}
//         quit           exit (every socket has SO_LINGER 0: closing sends an RST, leaves no
//                        orphan or TIME_WAIT behind)
//       A connection that is reset or closed while held counts in "closed" (and "open" drops).
// Each process needs a descriptor per connection: both raise RLIMIT_NOFILE as far as they may
// (without CAP_SYS_RESOURCE only up to the hard limit), so many_conns.sh runs several of each.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { kFree = 0, kConnecting, kOpen, kClosed };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char* what) {
  fprintf(stderr, "conn_hold: %s: %s\n", what, strerror(errno));
  exit(1);
}

// Raises RLIMIT_NOFILE toward `want` (the hard limit too where CAP_SYS_RESOURCE allows; without
// it, as in some containers, only the soft limit up to the hard one). Returns the limit in force.
static unsigned raise_nofile(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  if (rl.rlim_cur < want) {
    struct rlimit up = {want, want > rl.rlim_max ? want : rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
    }
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  return (unsigned)rl.rlim_cur;
}

static void set_linger0(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static int epoll_add(int ep, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data = {.u32 = (uint32_t)fd}};
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static struct sockaddr_in make_addr(const char* ip, unsigned port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    fprintf(stderr, "conn_hold: bad address %s\n", ip);
    exit(2);
  }
  return a;
}

// --- serve ---------------------------------------------------------------------------------------
#define MAX_PEERS 64
static uint32_t peer_addr[MAX_PEERS];
static uint64_t peer_open[MAX_PEERS];
static unsigned n_peers;

static int peer_slot(uint32_t addr) {
  for (unsigned i = 0; i < n_peers; i++)
    if (peer_addr[i] == addr) return (int)i;
  if (n_peers == MAX_PEERS) return -1;
  peer_addr[n_peers] = addr;
  peer_open[n_peers] = 0;
  return (int)n_peers++;
}

static void write_status(const char* path, uint64_t open_n, uint64_t accepted, uint64_t closed,
                         int full) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "{\"open\": %llu, \"accepted\": %llu, \"closed\": %llu, \"full\": %s, \"peers\": {",
          (unsigned long long)open_n, (unsigned long long)accepted, (unsigned long long)closed,
          full ? "true" : "false");
  for (unsigned i = 0; i < n_peers; i++) {
    char s[INET_ADDRSTRLEN];
    struct in_addr a = {.s_addr = peer_addr[i]};
    inet_ntop(AF_INET, &a, s, sizeof s);
    fprintf(f, "%s\"%s\": %llu", i ? ", " : "", s, (unsigned long long)peer_open[i]);
  }
  fprintf(f, "}}\n");
  fclose(f);
  rename(tmp, path);
}

static _Noreturn void serve(const char* ip, unsigned port, const char* status) {
  long max_fd = raise_nofile(1 << 20);
  int8_t* slot = malloc((size_t)max_fd);  // the peer slot of each accepted fd, -1 = none
  if (!slot) die("malloc");
  memset(slot, -1, (size_t)max_fd);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // several servers (processes) on one address:port: the kernel spreads the connections
  setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in a = make_addr(ip, port);
  if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0) die("bind");
  if (listen(ls, 65535) != 0) die("listen");
  int ep = epoll_create1(0);
  if (ep < 0 || epoll_add(ep, ls, EPOLLIN) != 0) die("epoll");
  uint64_t open_n = 0, accepted = 0, closed = 0;
  int full = 0;
  double last = 0;
  struct epoll_event evs[1024];
  char buf[4096];
  for (;;) {
    int n = epoll_wait(ep, evs, 1024, 200);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = (int)evs[i].data.u32;
      if (fd == ls) {
        for (;;) {
          struct sockaddr_in peer;
          socklen_t pl = sizeof peer;
          int c = accept4(ls, (struct sockaddr*)&peer, &pl, SOCK_NONBLOCK);
          if (c < 0) {
            if (errno == EMFILE || errno == ENFILE) {  // out of descriptors: stop accepting
              full = 1;
              epoll_ctl(ep, EPOLL_CTL_DEL, ls, NULL);
            }
            break;
          }
          if (c >= max_fd) {
            close(c);
            continue;
          }
          set_linger0(c);
          if (epoll_add(ep, c, EPOLLIN | EPOLLRDHUP) != 0) die("epoll_ctl");
          int s = peer_slot(peer.sin_addr.s_addr);
          slot[c] = (int8_t)s;
          if (s >= 0) peer_open[s]++;
          open_n++;
          accepted++;
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        if (write(fd, buf, (size_t)r) != r) r = 0;  // 8-byte probes: a short write is a failure
      }
      if (r == 0 || (r < 0 && errno != EAGAIN)) {
        if (slot[fd] >= 0) peer_open[slot[fd]]--;
        slot[fd] = -1;
        close(fd);
        open_n--;
        closed++;
      }
    }
    double t = now_s();
    if (t - last >= 1.0) {
      write_status(status, open_n, accepted, closed, full);
      last = t;
    }
  }
}

// --- hold ----------------------------------------------------------------------------------------
struct src {
  struct sockaddr_in addr;
  unsigned want, opened, next_port;
};

static uint8_t* state;  // per fd
static uint8_t* got;    // per fd: bytes of the check token received so far (0xff = not checked)
static unsigned max_fd;
static uint64_t n_open, n_closed, n_unexpected, n_failed;
static int ep;
static FILE* events;
static char first_error[128];

static uint8_t token_byte(int fd, uint32_t round, unsigned k) {
  uint32_t x = (uint32_t)fd * 2654435761u ^ round * 40503u ^ k * 2246822519u;
  x ^= x >> 15;
  return (uint8_t)(x * 2654435761u >> 24);
}

static void mark_closed(int fd, const char* why) {
  if (state[fd] == kOpen) n_open--;
  state[fd] = kClosed;
  n_closed++;
  if (!first_error[0]) snprintf(first_error, sizeof first_error, "fd %d: %s", fd, why);
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

// Starts one connect from s; returns 1 if it started, 0 if the source is exhausted.
static int start_connect(struct src* s, const struct sockaddr_in* dst) {
  while (s->next_port <= 65535) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    if ((unsigned)fd >= max_fd) die("fd beyond the table");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    set_linger0(fd);
    struct sockaddr_in b = s->addr;
    b.sin_port = htons((uint16_t)s->next_port++);
    if (bind(fd, (struct sockaddr*)&b, sizeof b) != 0) {  // port taken: the next one
      close(fd);
      continue;
    }
    if (connect(fd, (const struct sockaddr*)dst, sizeof *dst) != 0 && errno != EINPROGRESS) {
      close(fd);
      n_failed++;
      continue;
    }
    state[fd] = kConnecting;
    if (epoll_add(ep, fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP) != 0) die("epoll_ctl");
    return 1;
  }
  return 0;
}

static void emit(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(events, fmt, ap);
  va_end(ap);
  fputc('\n', events);
  fflush(events);
}

// One epoll event of a held connection (or of one still connecting).
static unsigned on_event(int fd, uint32_t ev, uint32_t round, uint64_t* echoed) {
  if (state[fd] == kConnecting) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err || (ev & (EPOLLERR | EPOLLHUP))) {
      n_failed++;
      if (!first_error[0])
        snprintf(first_error, sizeof first_error, "connect: %s", strerror(err ? err : ECONNRESET));
      state[fd] = kFree;
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      close(fd);
      return 1;  // one connect finished (failed)
    }
    state[fd] = kOpen;
    n_open++;
    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data = {.u32 = (uint32_t)fd}};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
    return 1;
  }
  if (state[fd] != kOpen) return 0;
  uint8_t buf[64];
  ssize_t r = read(fd, buf, sizeof buf);
  if (r > 0) {
    for (ssize_t k = 0; k < r; k++) {
      if (got[fd] >= 8 || buf[k] != token_byte(fd, round, got[fd])) {
        n_unexpected++;
        got[fd] = 0xff;
        return 0;
      }
      if (++got[fd] == 8) ++*echoed;
    }
    return 0;
  }
  if (r == 0) {
    mark_closed(fd, "closed by the peer");
  } else if (errno != EAGAIN) {
    mark_closed(fd, strerror(errno));
  }
  return 0;
}

static int hold(const char* dst_ip, unsigned dst_port, char* srcs, const char* fifo,
                const char* events_path) {
  struct sockaddr_in dst = make_addr(dst_ip, dst_port);
  struct src s[256];
  unsigned ns = 0, total = 0;
  for (char* tok = strtok(srcs, ","); tok && ns < 256; tok = strtok(NULL, ",")) {
    char* colon = strchr(tok, ':');
    if (!colon) return 2;
    *colon = 0;
    s[ns].addr = make_addr(tok, 0);
    char* rest;
    s[ns].want = (unsigned)strtoul(colon + 1, &rest, 10);
    s[ns].opened = 0;
    s[ns].next_port = *rest == ':' ? (unsigned)strtoul(rest + 1, NULL, 10) : 1024;
    total += s[ns].want;
    ns++;
  }
  max_fd = raise_nofile(total + 64);
  if (total + 64 > max_fd) {
    fprintf(stderr,
            "conn_hold: %u connections need %u descriptors, RLIMIT_NOFILE is %u: "
            "split them over several processes\n",
            total, total + 64, max_fd);
    return 2;
  }
  state = calloc(max_fd, 1);
  got = malloc(max_fd);
  if (!state || !got) die("malloc");
  memset(got, 0xff, max_fd);
  events = fopen(events_path, "a");
  if (!events) die(events_path);
  int ctl = open(fifo, O_RDWR | O_NONBLOCK);  // O_RDWR: no EOF when a writer goes away
  if (ctl < 0) die(fifo);
  ep = epoll_create1(0);
  if (ep < 0) die("epoll");
  const char* env = getenv("CONN_HOLD_INFLIGHT");
  unsigned max_inflight = env ? (unsigned)atoi(env) : 4096, inflight = 0, next_src = 0;
  const char* rate_env = getenv("CONN_HOLD_RATE");
  const double rate = rate_env ? atof(rate_env) : 0;
  unsigned started = 0, finished = 0;
  double t0 = now_s(), last_progress = t0;
  struct epoll_event evs[4096];
  uint64_t echoed = 0;
  // open everything
  while (finished < total) {
    while (inflight < max_inflight && started < total &&
           (rate <= 0 || started < (now_s() - t0) * rate + 1)) {
      while (next_src < ns && s[next_src].opened == s[next_src].want) next_src++;
      if (next_src == ns) break;
      if (!start_connect(&s[next_src], &dst)) {
        total -= s[next_src].want - s[next_src].opened;  // out of ports: fewer than asked
        s[next_src].want = s[next_src].opened;
        continue;
      }
      s[next_src].opened++;
      started++;
      inflight++;
    }
    int n = epoll_wait(ep, evs, 4096, rate > 0 ? 10 : 1000);
    for (int i = 0; i < n; i++) {
      int fd = (int)evs[i].data.u32;
      unsigned done = on_event(fd, evs[i].events, 0, &echoed);
      finished += done;
      inflight -= done;
    }
    if (now_s() - last_progress >= 5.0) {
      last_progress = now_s();
      emit(
          "{\"event\": \"progress\", \"seconds\": %.1f, \"open\": %llu, \"failed\": %llu, "
          "\"inflight\": %u}",
          last_progress - t0, (unsigned long long)n_open, (unsigned long long)n_failed, inflight);
    }
  }
  emit(
      "{\"event\": \"open\", \"seconds\": %.2f, \"open\": %llu, \"failed\": %llu, \"asked\": %u, "
      "\"first_error\": \"%s\"}",
      now_s() - t0, (unsigned long long)n_open, (unsigned long long)n_failed, total, first_error);
  // hold; serve commands (read only from now on)
  if (epoll_add(ep, ctl, EPOLLIN) != 0) die("epoll_ctl");
  char cmd[256];
  size_t cmd_len = 0;
  uint32_t round = 0;
  for (;;) {
    int n = epoll_wait(ep, evs, 4096, -1);
    for (int i = 0; i < n; i++) {
      int fd = (int)evs[i].data.u32;
      if (fd != ctl) {
        on_event(fd, evs[i].events, round, &echoed);
        continue;
      }
      ssize_t r = read(ctl, cmd + cmd_len, sizeof cmd - 1 - cmd_len);
      if (r <= 0) continue;
      cmd_len += (size_t)r;
      char* nl;
      while ((nl = memchr(cmd, '\n', cmd_len))) {
        *nl = 0;
        unsigned want = 0, seed = 0;
        if (strcmp(cmd, "quit") == 0) {
          emit("{\"event\": \"quit\", \"open\": %llu}", (unsigned long long)n_open);
          return 0;  // exit closes every socket (SO_LINGER 0: RST)
        } else if (strcmp(cmd, "count") == 0) {
          emit(
              "{\"event\": \"count\", \"open\": %llu, \"closed\": %llu, \"unexpected\": %llu, "
              "\"first_error\": \"%s\"}",
              (unsigned long long)n_open, (unsigned long long)n_closed,
              (unsigned long long)n_unexpected, first_error);
        } else if (sscanf(cmd, "check %u %u", &want, &seed) == 2) {
          // sample `want` open connections, send each its token, wait for the echoes
          round++;
          srandom(seed);
          unsigned sampled = 0, tries = 0;
          uint64_t closed_before = n_closed;
          memset(got, 0xff, max_fd);
          echoed = 0;
          double c0 = now_s();
          while (sampled < want && sampled < n_open && tries++ < want * 100) {
            int c = (int)((unsigned long)random() % max_fd);
            if (state[c] != kOpen || got[c] != 0xff) continue;
            uint8_t tok[8];
            for (unsigned k = 0; k < 8; k++) tok[k] = token_byte(c, round, k);
            got[c] = 0;
            sampled++;
            if (write(c, tok, 8) != 8) mark_closed(c, "write failed");
          }
          while (echoed < sampled && now_s() - c0 < 30.0) {
            int m = epoll_wait(ep, evs, 4096, 200);
            for (int j = 0; j < m; j++) {
              int f2 = (int)evs[j].data.u32;
              if (f2 != ctl) on_event(f2, evs[j].events, round, &echoed);
            }
          }
          emit(
              "{\"event\": \"check\", \"sampled\": %u, \"echoed\": %llu, \"failed\": %llu, "
              "\"seconds\": %.3f, \"open\": %llu, \"closed_during\": %llu, \"unexpected\": %llu}",
              sampled, (unsigned long long)echoed, (unsigned long long)(sampled - echoed),
              now_s() - c0, (unsigned long long)n_open,
              (unsigned long long)(n_closed - closed_before), (unsigned long long)n_unexpected);
        } else {
          emit("{\"event\": \"error\", \"unknown_command\": \"%s\"}", cmd);
        }
        cmd_len -= (size_t)(nl + 1 - cmd);
        memmove(cmd, nl + 1, cmd_len);
      }
      if (cmd_len == sizeof cmd - 1) cmd_len = 0;
    }
  }
}

int main(int argc, char** argv) {
  if (argc == 5 && strcmp(argv[1], "serve") == 0) serve(argv[2], (unsigned)atoi(argv[3]), argv[4]);
  if (argc == 7 && strcmp(argv[1], "hold") == 0)
    return hold(argv[2], (unsigned)atoi(argv[3]), argv[4], argv[5], argv[6]);
  fprintf(stderr,
          "usage: conn_hold serve ADDR PORT STATUS_FILE\n"
          "       conn_hold hold DST_ADDR DST_PORT SRC:COUNT[,SRC:COUNT...] CTL_FIFO EVENTS\n");
  return 2;
}
