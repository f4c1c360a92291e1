/*
 * memlink-driver-posix-mq: a conformance driver (conformance/DRIVER.md,
 * protocol 2, and protocol 1 for older suites) for POSIX message queues, in
 * plain C11. It includes nothing from the memlink repository: copy this
 * directory anywhere and build it alone (README.md).
 *
 * It exists to show that the driver protocol is language-neutral and to be
 * copied: one process, one endpoint, JSON lines in on stdin, JSON lines out
 * on stdout. The mapping onto POSIX mq in short (README.md says more):
 *
 *   segment PATH   one queue per SPEC ring: "/memlink-mq-<FNV-1a 64 of
 *                  PATH>-<c2d|d2c>-<priority 0..2>", plus a state file
 *                  PATH.mq-daemon holding "pid epoch protocol_version
 *                  queue_id" on which the live daemon holds a flock(2): the
 *                  lock, not the pid, says whether a daemon is alive (the
 *                  kernel drops it when the process dies; pids are reused;
 *                  a killed daemon not yet reaped is a zombie kill(2) finds).
 *   priorities     a read takes from the critical queue, else the high one,
 *                  else the low one. (One queue with mq's own priorities
 *                  would share its depth among them, and SPEC R-CAPACITY
 *                  gives each priority a capacity of its own.)
 *   sequence       none: mq has no counter shared by the writers, so SPEC
 *                  T-SEQ cannot be met. Protocol 2 answers leave it out
 *                  (no `sequences`); protocol 1 ones and D-RECORDs say 0.
 *   wait           mq_notify(3) with a signal, so that waiting does not take
 *                  the message out of the queue (mq has no peek).
 *   limits         slot_size 1 .. /proc/sys/fs/mqueue/msgsize_max (a
 *                  queue's largest message); segment_size 1 .. SPEC's
 *                  largest (it only sizes the queues' depth, which msg_max
 *                  caps long before).
 *   reset          the endpoint ends as the process's exit would end it
 *                  (a daemon's queues, messages and state file stay, its
 *                  lock goes), and the process is fresh again.
 *
 * Build: gcc -std=c11 -Wall -Wextra -O2 -o memlink-driver-posix-mq driver.c -lrt
 * (or CMake, alone: README.md).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* flock, getline, sigtimedwait, PATH_MAX */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <mqueue.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define DRIVER_NAME "posix-mq"
#define DRIVER_VERSION "1.1" /* this driver's own version: hello and --version */
#define PROTOCOL 2           /* DRIVER.md's version; PROTOCOL_OLD is still spoken */
#define PROTOCOL_OLD 1

/* D-LIMITS: the segment_size values create accepts. The size only sets the
 * queues' depth (a sixth of it per queue, in slots), which msg_max caps long
 * before the largest; that largest is SPEC's (268435456 + 4096). */
#define MIN_SEGMENT_SIZE 1LL
#define MAX_SEGMENT_SIZE 268439552LL

/* How long a blocking op sleeps before it looks at the daemon again
 * (SPEC T-WAIT's sleep slice), and the workload loops' wait. */
#define SLICE_MS 100
#define WORKLOAD_SLICE_MS 50

#define MIN_PAYLOAD 24 /* D-PAYLOAD: id (14 bytes) + some filler + FNV (4) */

/* The signal mq_notify raises when a message arrives in an empty queue: a
 * real-time one, so that notifications from the three queues of a direction
 * queue up, each saying which queue it is for. It stays blocked for the
 * whole life of the process; `wait` collects it with sigtimedwait. */
#define NOTIFY_SIGNAL SIGRTMIN

/* ------------------------------------------------------------------ utilities */

enum { C2D = 0, D2C = 1 };
static const char *const direction_name[2] = {"c2d", "d2c"};
#define PRIORITIES 3 /* SPEC priority 0 critical, 1 high, 2 low */
static const char *const priority_name[PRIORITIES] = {"critical", "high", "low"};

static uint64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* mq_timed* take an absolute CLOCK_REALTIME deadline. */
static struct timespec realtime_in(uint64_t ns) {
  const uint64_t t = now_ns(CLOCK_REALTIME) + ns;
  struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
  return ts;
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
  nanosleep(&ts, NULL); /* EINTR (SIGTERM) just ends the sleep early */
}

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
static uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325u;
  for (; *s; ++s) h = (h ^ (uint8_t)*s) * 0x100000001b3u;
  return h;
}

/* A number from /proc/sys/fs/mqueue/..., or `fallback`. */
static long mqueue_limit(const char *name, long fallback) {
  char path[96];
  snprintf(path, sizeof path, "/proc/sys/fs/mqueue/%s", name);
  FILE *f = fopen(path, "r");
  long v = fallback;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1) v = fallback;
    fclose(f);
  }
  return v;
}

/* -------------------------------------------------------- the request reader
 *
 * Requests are flat JSON objects whose values are strings, integers or
 * booleans (DRIVER.md), so a full JSON library is not needed: this reads
 * exactly that and refuses everything else. */

enum value_kind { V_STRING, V_INT, V_BOOL };

struct field {
  char *key;
  enum value_kind kind;
  char *str; /* V_STRING, NUL-terminated (a \u0000 would cut it short) */
  long long num;
  bool flag;
};

#define MAX_FIELDS 32
struct request {
  long long id; /* -1 until known */
  struct field f[MAX_FIELDS];
  int n;
};

static void skip_ws(const char **p) {
  while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n') ++*p;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; ++i) {
    const int d = hex_digit(p[i]);
    if (d < 0) return false;
    v = v * 16 + (unsigned)d;
  }
  *out = v;
  return true;
}

static char *utf8_put(char *o, unsigned cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xc0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xe0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *o++ = (char)(0x80 | (cp & 0x3f));
  } else {
    *o++ = (char)(0xf0 | (cp >> 18));
    *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *o++ = (char)(0x80 | (cp & 0x3f));
  }
  return o;
}

/* A JSON string at *p (on its opening quote); a malloc'ed copy, or NULL. */
static char *parse_string(const char **p) {
  if (**p != '"') return NULL;
  const char *s = ++*p;
  char *out = malloc(strlen(s) + 1); /* unescaping never makes it longer */
  if (!out) return NULL;
  char *o = out;
  for (;;) {
    const unsigned char c = (unsigned char)*s++;
    if (c == '"') break;
    if (c < 0x20) goto bad; /* also the end of the line */
    if (c != '\\') {
      *o++ = (char)c;
      continue;
    }
    const char e = *s++;
    switch (e) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (!read_hex4(s, &cp)) goto bad;
        s += 4;
        if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
          if (s[0] != '\\' || s[1] != 'u' || !read_hex4(s + 2, &lo) || lo < 0xdc00 || lo >= 0xe000) goto bad;
          s += 6;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          goto bad;
        }
        o = utf8_put(o, cp);
        break;
      }
      default: goto bad;
    }
  }
  *o = '\0';
  *p = s;
  return out;
bad:
  free(out);
  return NULL;
}

static void free_request(struct request *rq) {
  for (int i = 0; i < rq->n; ++i) {
    free(rq->f[i].key);
    free(rq->f[i].str);
  }
  rq->n = 0;
}

static bool fail(const char **why, const char *reason) {
  *why = reason;
  return false;
}

/* Parses one line into `rq`; false (with `why`) if it is not a flat object. */
static bool parse_request(const char *line, struct request *rq, const char **why) {
  const char *p = line;
  rq->id = -1;
  rq->n = 0;
  skip_ws(&p);
  if (*p++ != '{') return fail(why, "not a JSON object");
  skip_ws(&p);
  if (*p == '}') {
    ++p;
  } else {
    for (;;) {
      if (rq->n == MAX_FIELDS) return fail(why, "too many fields");
      struct field *f = &rq->f[rq->n];
      memset(f, 0, sizeof *f);
      if (!(f->key = parse_string(&p))) return fail(why, "bad key");
      ++rq->n; /* owned from here on, freed by free_request */
      skip_ws(&p);
      if (*p++ != ':') return fail(why, "expected ':'");
      skip_ws(&p);
      if (*p == '"') {
        f->kind = V_STRING;
        if (!(f->str = parse_string(&p))) return fail(why, "bad string value");
      } else if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        f->kind = V_BOOL;
        f->flag = *p == 't';
        p += f->flag ? 4 : 5;
      } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char *end;
        errno = 0;
        f->kind = V_INT;
        f->num = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE || *end == '.' || *end == 'e' || *end == 'E')
          return fail(why, "values must be integers, strings or booleans");
        p = end;
      } else {
        return fail(why, "values must be integers, strings or booleans");
      }
      skip_ws(&p);
      if (*p == ',') {
        ++p;
        skip_ws(&p);
        continue;
      }
      if (*p++ != '}') return fail(why, "expected ',' or '}'");
      break;
    }
  }
  skip_ws(&p);
  if (*p != '\0') return fail(why, "trailing characters after the object");
  return true;
}

static const struct field *find_field(const struct request *rq, const char *key, enum value_kind kind) {
  for (int i = 0; i < rq->n; ++i)
    if (strcmp(rq->f[i].key, key) == 0 && rq->f[i].kind == kind) return &rq->f[i];
  return NULL;
}
static const char *req_str(const struct request *rq, const char *key) {
  const struct field *f = find_field(rq, key, V_STRING);
  return f ? f->str : NULL;
}
static bool req_int(const struct request *rq, const char *key, long long *out) {
  const struct field *f = find_field(rq, key, V_INT);
  if (f) *out = f->num;
  return f != NULL;
}

/* ------------------------------------------------------------- the responses
 *
 * One line each, flushed at once (D-FRAME). `fields` is already JSON: a
 * comma-led list such as ,"sequence":0. */

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; ++s) {
    const unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void reply_ok(long long id, const char *fields_fmt, ...) {
  printf("{\"id\":%lld,\"ok\":true", id);
  va_list ap;
  va_start(ap, fields_fmt);
  vprintf(fields_fmt, ap);
  va_end(ap);
  printf("}\n");
  fflush(stdout);
}

/* Error names are SPEC E-CODES' (D-ERRORS). */
static void reply_error(long long id, const char *error, const char *detail_fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, detail_fmt);
  vsnprintf(detail, sizeof detail, detail_fmt, ap);
  va_end(ap);
  printf("{\"id\":%lld,\"ok\":false,\"error\":\"%s\",\"detail\":", id, error);
  print_json_string(detail);
  printf("}\n");
  fflush(stdout);
}

/* --------------------------------------------------------------- the segment */

enum role { ROLE_NONE, ROLE_DAEMON, ROLE_CLIENT };

static struct {
  bool greeted; /* hello answered */
  int protocol; /* the version the last hello agreed on: PROTOCOL or PROTOCOL_OLD */
  enum role role;
  bool shut_down; /* the daemon ran shutdown: its endpoint is spent */
  char segment[PATH_MAX];
  char state_path[PATH_MAX + 16]; /* PATH.mq-daemon */
  char queue_name[2][PRIORITIES][64];
  mqd_t q[2][PRIORITIES]; /* [direction][SPEC priority], opened O_NONBLOCK */
  long msgsize;           /* the queues' mq_msgsize: the largest message */
  long depth;             /* the queues' mq_maxmsg: one ring's capacity */
  uint64_t epoch;         /* daemon: the epoch it serves */
  bool takeover;          /* daemon: it started on queues a dead daemon left */
  int lock_fd;            /* daemon: the locked state file */
  uint64_t queue_id;      /* both: which incarnation of the queues it opened */
} g = {.q = {{(mqd_t)-1, (mqd_t)-1, (mqd_t)-1}, {(mqd_t)-1, (mqd_t)-1, (mqd_t)-1}}, .lock_fd = -1};

static int outbound(void) { return g.role == ROLE_DAEMON ? D2C : C2D; }
static int inbound(void) { return g.role == ROLE_DAEMON ? C2D : D2C; }

/* The names a segment PATH stands for: its state file and its six queues. */
static void segment_names(const char *path, char state_path[PATH_MAX + 16], char queue_name[2][PRIORITIES][64]) {
  snprintf(state_path, PATH_MAX + 16, "%s.mq-daemon", path);
  /* mq names: one leading '/', no other; NAME_MAX long at most. */
  const uint64_t h = fnv1a64(path);
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < PRIORITIES; ++p)
      snprintf(queue_name[d][p], 64, "/memlink-mq-%016" PRIx64 "-%s-%d", h, direction_name[d], p);
}

static void name_segment(const char *path) {
  snprintf(g.segment, sizeof g.segment, "%s", path);
  segment_names(path, g.state_path, g.queue_name);
}

static void close_queues(void) {
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < PRIORITIES; ++p) {
      if (g.q[d][p] != (mqd_t)-1) mq_close(g.q[d][p]);
      g.q[d][p] = (mqd_t)-1;
    }
}

static void unlink_queues(void) {
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < PRIORITIES; ++p) mq_unlink(g.queue_name[d][p]);
}

static const char *errno_code(int e) {
  switch (e) {
    case ENOENT: return "NotFound";
    case EACCES:
    case EPERM: return "PermissionDenied";
    case EINVAL:
    case ENAMETOOLONG: return "InvalidArgument";
    case EEXIST: return "AlreadyExists";
    default: return "IoError"; /* EMFILE: RLIMIT_MSGQUEUE or descriptors; ENOSPC: queues_max */
  }
}

/* Toggles O_NONBLOCK: plain ops never block, timed ones must be allowed to. */
static void set_blocking(mqd_t q, bool blocking) {
  struct mq_attr a = {.mq_flags = blocking ? 0 : O_NONBLOCK};
  mq_setattr(q, &a, NULL);
}

/* Takes the next message of the inbound direction without blocking: from
 * the critical queue, else the high one, else the low one (SPEC R-ORDER).
 * Its length, and its priority in *priority; -1 with errno EAGAIN when all
 * three are empty. */
static ssize_t take_next(char *buf, int *priority) {
  for (int p = 0; p < PRIORITIES; ++p) {
    const ssize_t n = mq_receive(g.q[inbound()][p], buf, (size_t)g.msgsize, NULL);
    if (n >= 0 || errno != EAGAIN) {
      *priority = p;
      return n;
    }
  }
  return -1; /* errno is EAGAIN */
}

/* What the state file says. `alive` is decided by its lock alone. */
struct daemon_info {
  bool exists, alive, parsed;
  long pid;
  uint64_t epoch, version, queue_id;
};

static struct daemon_info probe_state_file(const char *state_path) {
  struct daemon_info s = {0};
  const int fd = open(state_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return s;
  s.exists = true;
  /* A shared probe: it never conflicts with another prober, and a starting
   * daemon locks a file of its own before renaming it into place. */
  s.alive = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  char buf[160];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd); /* drops our probe lock, if we got it */
  if (n > 0) {
    buf[n] = '\0';
    s.parsed = sscanf(buf, "%ld %" SCNu64 " %" SCNu64 " %" SCNx64, &s.pid, &s.epoch, &s.version, &s.queue_id) == 4;
  }
  return s;
}

static struct daemon_info probe_daemon(void) { return probe_state_file(g.state_path); }

/* Writes "pid epoch version queue_id" through a temporary file and rename, so
 * nobody reads half a file, and locks it before it gets its name, so it is
 * never visible unlocked while this daemon lives. The lock lasts as long as
 * g.lock_fd stays open: until shutdown or death. */
static bool write_state_file(uint64_t version, char *detail, size_t cap) {
  char tmp[sizeof g.state_path + 32];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", g.state_path, (long)getpid());
  const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(detail, cap, "open %s: %s", tmp, strerror(errno));
    return false;
  }
  char text[128];
  const int len = snprintf(text, sizeof text, "%ld %" PRIu64 " %" PRIu64 " %016" PRIx64 "\n", (long)getpid(), g.epoch,
                           version, g.queue_id);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 || write(fd, text, (size_t)len) != len || rename(tmp, g.state_path) != 0) {
    snprintf(detail, cap, "writing %s: %s", g.state_path, strerror(errno));
    close(fd);
    unlink(tmp);
    return false;
  }
  g.lock_fd = fd;
  return true;
}

/* A client's view of its daemon. Shut down: the state file is gone, or names
 * other queues than the ones this client opened (a later fresh daemon). */
static bool segment_shut_down(const struct daemon_info *s) {
  return !s->exists || (s->parsed && s->queue_id != g.queue_id);
}

/* For ops that need a live peer (wait, a write_blocking that would block):
 * NULL, or why the client is Disconnected (written to `detail`). */
static const char *client_peer_gone(char *detail, size_t cap) {
  const struct daemon_info s = probe_daemon();
  if (segment_shut_down(&s))
    snprintf(detail, cap, "the daemon of %s has shut down", g.segment);
  else if (!s.alive)
    snprintf(detail, cap, "daemon pid %ld of %s is not running", s.pid, g.segment);
  else
    return NULL;
  return "Disconnected";
}

/* Set by SIGTERM in workload mode (request mode leaves SIGTERM's default). */
static volatile sig_atomic_t g_term = 0;

enum wait_result { WAIT_READY, WAIT_TIMEOUT, WAIT_GONE, WAIT_BUSY, WAIT_FAILED };

/* Waits until an inbound queue holds a message, without taking it: mq has
 * no peek, but mq_notify(3) sends NOTIFY_SIGNAL when a message arrives in an
 * *empty* queue (once per registration, and to one process per queue: the
 * direction's one consumer, so another's registration is WAIT_BUSY). It
 * registers first and looks at the counts second, so a message arriving in
 * between is not missed: a count shows it or the signal comes. Sleeps are
 * sliced so that a client notices a dead daemon (SPEC T-WAIT); a slice that
 * ends only loops, it never answers READY by itself (DRIVER.md D-IO).
 * `detail` says why for GONE, BUSY and FAILED. */
static enum wait_result wait_inbound(uint64_t timeout_ns, char *detail, size_t cap) {
  const uint64_t deadline = now_ns(CLOCK_MONOTONIC) + timeout_ns;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, NOTIFY_SIGNAL);
  const struct timespec zero = {0, 0};
  while (sigtimedwait(&set, NULL, &zero) > 0) {
    /* notifications an earlier wait left pending */
  }
  bool registered[PRIORITIES] = {false, false, false};
  enum wait_result result;
  for (;;) {
    for (int p = 0; p < PRIORITIES; ++p) {
      if (registered[p]) continue;
      struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = NOTIFY_SIGNAL, .sigev_value.sival_int = p};
      if (mq_notify(g.q[inbound()][p], &sev) == 0) {
        registered[p] = true;
        continue;
      }
      result = errno == EBUSY ? WAIT_BUSY : WAIT_FAILED;
      snprintf(detail, cap, "mq_notify %s: %s", g.queue_name[inbound()][p],
               errno == EBUSY ? "another process waits on it (one consumer per direction)" : strerror(errno));
      goto out;
    }
    for (int p = 0; p < PRIORITIES; ++p) {
      struct mq_attr a;
      if (mq_getattr(g.q[inbound()][p], &a) == 0 && a.mq_curmsgs > 0) {
        result = WAIT_READY;
        goto out;
      }
    }
    if (g.role == ROLE_CLIENT && client_peer_gone(detail, cap)) {
      result = WAIT_GONE;
      goto out;
    }
    const uint64_t now = now_ns(CLOCK_MONOTONIC);
    if (now >= deadline || g_term) {
      result = WAIT_TIMEOUT;
      goto out;
    }
    uint64_t slice = deadline - now;
    if (slice > SLICE_MS * 1000000u) slice = SLICE_MS * 1000000u;
    const struct timespec ts = {.tv_sec = (time_t)(slice / 1000000000u), .tv_nsec = (long)(slice % 1000000000u)};
    siginfo_t info;
    if (sigtimedwait(&set, &info, &ts) == NOTIFY_SIGNAL && info.si_code == SI_MESGQ) {
      const int p = info.si_value.sival_int; /* the queue it came from: its registration is spent */
      if (p >= 0 && p < PRIORITIES) registered[p] = false;
    }
  }
out:
  for (int p = 0; p < PRIORITIES; ++p)
    if (registered[p]) mq_notify(g.q[inbound()][p], NULL);
  return result;
}

/* -------------------------------------------------------------- the requests */

static bool need_role(long long id, enum role want) {
  if (g.role == ROLE_NONE) {
    reply_error(id, "InvalidState", "no endpoint yet: create or connect first");
    return false;
  }
  if (g.role != want) {
    reply_error(id, "InvalidState", "only a %s may do this", want == ROLE_DAEMON ? "daemon" : "client");
    return false;
  }
  if (g.shut_down) {
    reply_error(id, "Disconnected", "this daemon has shut down");
    return false;
  }
  return true;
}

/* The process's endpoint for an I/O op (either role). */
static bool need_endpoint(long long id) {
  if (g.role == ROLE_NONE) {
    reply_error(id, "InvalidState", "no endpoint yet: create or connect first");
    return false;
  }
  if (g.shut_down) {
    reply_error(id, "Disconnected", "this daemon has shut down");
    return false;
  }
  return true;
}

/* create and connect: only a fresh process (D-LIFECYCLE). A daemon that
 * shut down is still the daemon until reset; protocol 1 (no reset) let it
 * start again, and still does. */
static bool need_free(long long id) {
  if (g.shut_down && g.protocol == PROTOCOL_OLD) {
    close_queues();
    g.role = ROLE_NONE;
    g.shut_down = false;
  }
  if (g.role != ROLE_NONE) {
    reply_error(id, "InvalidState", "this process already serves a %s endpoint%s (reset it first)",
                g.role == ROLE_DAEMON ? "daemon" : "client", g.shut_down ? " that shut down" : "");
    return false;
  }
  return true;
}

/* Ends this process's endpoint the way its exit would (D-RESET): a daemon
 * without shutdown, so its queues, their messages and its state file stay
 * (a later create takes them over, as after a crash), and its lock goes, as
 * the kernel drops it at exit; a client's queues are closed, as at exit.
 * Closing a queue also drops this process's mq_notify registration on it;
 * notifications already queued are collected here. Afterwards the process
 * is fresh, as after hello. */
static void end_endpoint(void) {
  close_queues();
  if (g.lock_fd >= 0) close(g.lock_fd);
  g.lock_fd = -1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, NOTIFY_SIGNAL);
  const struct timespec zero = {0, 0};
  while (sigtimedwait(&set, NULL, &zero) > 0) {
  }
  g.role = ROLE_NONE;
  g.shut_down = false;
  g.segment[0] = g.state_path[0] = '\0';
  memset(g.queue_name, 0, sizeof g.queue_name);
  g.msgsize = g.depth = 0;
  g.epoch = g.queue_id = 0;
  g.takeover = false;
}

static void op_reset(const struct request *rq) {
  const enum role was = g.role;
  end_endpoint();
  if (was != ROLE_NONE)
    fprintf(stderr, "posix-mq pid %ld: reset (was a %s)\n", (long)getpid(), was == ROLE_DAEMON ? "daemon" : "client");
  reply_ok(rq->id, "");
}

static void op_hello(const struct request *rq) {
  long long protocol;
  if (!req_int(rq, "protocol", &protocol)) {
    reply_error(rq->id, "InvalidArgument", "hello needs \"protocol\"");
    return;
  }
  if (protocol != PROTOCOL && protocol != PROTOCOL_OLD) {
    reply_error(rq->id, "ProtocolMismatch", "this driver speaks driver protocols %d and %d, not %lld", PROTOCOL,
                PROTOCOL_OLD, protocol);
    return;
  }
  g.greeted = true;
  g.protocol = (int)protocol;
  const long msgsize_max = mqueue_limit("msgsize_max", 8192);
  /* Not claimed: two_step (mq_receive is destructive), takeover (no
   * heartbeat; a SIGSTOPped daemon keeps its lock), spec_layout, observe,
   * stops, crash_points, pause_points, backpressure, peek (no SPEC segment:
   * the kernel keeps the messages, and shows only their count), sequences
   * (no T-SEQ). */
  if (protocol == PROTOCOL_OLD) { /* as driver 1.0 answered it: no reset, max_payload */
    reply_ok(rq->id,
             ",\"protocol\":%d,\"name\":\"%s\",\"version\":\"%s\",\"capabilities\":[\"priorities\","
             "\"daemon_writes\",\"write_blocking\",\"wait\",\"crash_recovery\",\"workload\",\"cleanup\"],"
             "\"max_payload\":%ld",
             PROTOCOL_OLD, DRIVER_NAME, DRIVER_VERSION, msgsize_max);
    return;
  }
  /* D-LIMITS: what create accepts. No capacity: the depth follows the
   * segment size (create answers it). */
  reply_ok(rq->id,
           ",\"protocol\":%d,\"name\":\"%s\",\"version\":\"%s\",\"capabilities\":[\"priorities\","
           "\"daemon_writes\",\"write_blocking\",\"wait\",\"crash_recovery\",\"workload\",\"cleanup\",\"reset\"],"
           "\"limits\":{\"segment_size\":{\"min\":%lld,\"max\":%lld},\"slot_size\":{\"min\":1,\"max\":%ld}}",
           PROTOCOL, DRIVER_NAME, DRIVER_VERSION, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE, msgsize_max);
}

/* Opens one queue, creating it if it does not exist; *created says which. */
static mqd_t open_queue(const char *name, struct mq_attr *attr, bool *created) {
  mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0600, attr);
  *created = q != (mqd_t)-1;
  if (q == (mqd_t)-1 && errno == EEXIST) q = mq_open(name, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  return q;
}

static void op_create(const struct request *rq) {
  const char *path = req_str(rq, "segment");
  long long segment_size, slot_size, version;
  if (!path || !req_int(rq, "segment_size", &segment_size) || !req_int(rq, "slot_size", &slot_size) ||
      !req_int(rq, "protocol_version", &version)) {
    reply_error(rq->id, "InvalidArgument", "create needs segment, segment_size, slot_size, protocol_version");
    return;
  }
  /* heartbeat_ms / heartbeat_timeout_ms: no heartbeat here (takeover is not claimed). */
  const long msgsize_max = mqueue_limit("msgsize_max", 8192), msg_max = mqueue_limit("msg_max", 10);
  if (slot_size < 1 || slot_size > msgsize_max) {
    reply_error(rq->id, "InvalidArgument", "slot_size %lld is outside [1, %ld] (/proc/sys/fs/mqueue/msgsize_max)",
                slot_size, msgsize_max);
    return;
  }
  if (segment_size < MIN_SEGMENT_SIZE || segment_size > MAX_SEGMENT_SIZE) {
    reply_error(rq->id, "InvalidArgument", "segment_size %lld is outside [%lld, %lld] (hello's limits)", segment_size,
                MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE);
    return;
  }
  if (!need_free(rq->id)) return;
  name_segment(path);

  const struct daemon_info prev = probe_daemon();
  if (prev.alive) {
    reply_error(rq->id, "AlreadyExists", "daemon pid %ld serves %s", prev.pid, path);
    return;
  }

  /* Depth: what a sixth of the segment would hold (two directions, three
   * rings each), but the kernel refuses mq_maxmsg above msg_max (EINVAL). */
  long depth = (long)(segment_size / (2 * PRIORITIES) / slot_size);
  if (depth > msg_max) depth = msg_max;
  if (depth < 1) depth = 1;
  struct mq_attr attr = {.mq_maxmsg = depth, .mq_msgsize = (long)slot_size};

  bool created[2][PRIORITIES] = {{false}}, existed = false;
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < PRIORITIES; ++p) {
      g.q[d][p] = open_queue(g.queue_name[d][p], &attr, &created[d][p]);
      if (g.q[d][p] == (mqd_t)-1) {
        const int e = errno;
        for (int k = 0; k < 2 * PRIORITIES; ++k)
          if (created[k / PRIORITIES][k % PRIORITIES]) mq_unlink(g.queue_name[k / PRIORITIES][k % PRIORITIES]);
        close_queues();
        reply_error(rq->id, errno_code(e), "mq_open %s (maxmsg %ld, msgsize %lld): %s", g.queue_name[d][p], depth,
                    slot_size, strerror(e));
        return;
      }
      existed = existed || !created[d][p];
    }
  /* Queues a dead daemon left behind keep their messages: a takeover. They
   * also keep the geometry they were made with, which wins over this
   * request's. */
  g.takeover = existed;
  g.epoch = g.takeover && prev.parsed ? prev.epoch + 1 : 1;
  /* queue_id names this incarnation of the queues: a takeover keeps it; new
   * queues get a new one, so that clients of the old ones learn they are gone. */
  g.queue_id = g.takeover && prev.parsed ? prev.queue_id : now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 40);
  struct mq_attr got;
  mq_getattr(g.q[C2D][0], &got);
  g.msgsize = got.mq_msgsize;
  g.depth = got.mq_maxmsg;

  char detail[PATH_MAX + 64];
  if (!write_state_file((uint64_t)version, detail, sizeof detail)) {
    for (int k = 0; k < 2 * PRIORITIES; ++k)
      if (created[k / PRIORITIES][k % PRIORITIES]) mq_unlink(g.queue_name[k / PRIORITIES][k % PRIORITIES]);
    close_queues();
    reply_error(rq->id, "IoError", "%s", detail);
    return;
  }
  g.role = ROLE_DAEMON;
  fprintf(stderr, "posix-mq daemon pid %ld: %s epoch %" PRIu64 " on %s (depth %ld, msgsize %ld)\n", (long)getpid(),
          g.takeover ? "took over" : "created", g.epoch, path, g.depth, g.msgsize);
  /* D-CREATE: the capacities and slot size of the queues as they are (a
   * takeover keeps the geometry the dead daemon's queues were made with). */
  if (g.protocol == PROTOCOL_OLD)
    reply_ok(rq->id, ",\"epoch\":%" PRIu64 ",\"started\":\"%s\",\"capacity\":[%ld,%ld,%ld]", g.epoch,
             g.takeover ? "takeover" : "fresh", g.depth, g.depth, g.depth);
  else
    reply_ok(rq->id, ",\"started\":\"%s\",\"capacity\":[%ld,%ld,%ld],\"slot_size\":%ld,\"epoch\":%" PRIu64,
             g.takeover ? "takeover" : "fresh", g.depth, g.depth, g.depth, g.msgsize, g.epoch);
}

static void op_connect(const struct request *rq) {
  const char *path = req_str(rq, "segment");
  long long version;
  if (!path || !req_int(rq, "protocol_version", &version)) {
    reply_error(rq->id, "InvalidArgument", "connect needs segment and protocol_version");
    return;
  }
  if (!need_free(rq->id)) return;
  name_segment(path);
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < PRIORITIES; ++p) {
      g.q[d][p] = mq_open(g.queue_name[d][p], O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (g.q[d][p] == (mqd_t)-1) {
        const int e = errno;
        close_queues();
        reply_error(rq->id, errno_code(e), "no segment %s: mq_open %s: %s", path, g.queue_name[d][p], strerror(e));
        return;
      }
    }
  /* Checked in V-CONNECT's order: garbled, protocol version, daemon alive. */
  const struct daemon_info s = probe_daemon();
  const char *error = NULL;
  char detail[PATH_MAX + 128];
  if (!s.exists) {
    error = "Disconnected";
    snprintf(detail, sizeof detail, "no daemon serves %s (no %s)", path, g.state_path);
  } else if (!s.parsed) {
    error = "CorruptSegment";
    snprintf(detail, sizeof detail, "%s does not read \"pid epoch version queue_id\"", g.state_path);
  } else if (s.version != (uint64_t)version) {
    error = "ProtocolMismatch";
    snprintf(detail, sizeof detail, "the segment speaks protocol_version %" PRIu64 ", this client %lld", s.version,
             version);
  } else if (!s.alive) {
    error = "Disconnected";
    snprintf(detail, sizeof detail, "daemon pid %ld of %s is not running", s.pid, path);
  }
  if (error) {
    close_queues();
    reply_error(rq->id, error, "%s", detail);
    return;
  }
  struct mq_attr got;
  mq_getattr(g.q[D2C][0], &got);
  g.msgsize = got.mq_msgsize;
  g.depth = got.mq_maxmsg;
  g.queue_id = s.queue_id;
  g.role = ROLE_CLIENT;
  reply_ok(rq->id, "");
}

static void op_disconnect(const struct request *rq) {
  if (!need_role(rq->id, ROLE_CLIENT)) return;
  close_queues();
  g.role = ROLE_NONE;
  reply_ok(rq->id, "");
}

/* mq has no sequence numbers. Protocol 1 wanted one in every write and read
 * answer (0 here); protocol 2 wants none without `sequences` (D-IO). */
static const char *no_sequence(void) { return g.protocol == PROTOCOL_OLD ? ",\"sequence\":0" : ""; }

/* Checks priority and data of a write; fills `buf` (malloc'ed) and `len`. */
static bool write_args(const struct request *rq, int *priority, uint8_t **buf, size_t *len) {
  long long p;
  const char *hex = req_str(rq, "data");
  if (!req_int(rq, "priority", &p) || !hex) {
    reply_error(rq->id, "InvalidArgument", "write needs priority and data");
    return false;
  }
  if (p < 0 || p >= PRIORITIES) {
    reply_error(rq->id, "InvalidArgument", "priority %lld is not 0, 1 or 2", p);
    return false;
  }
  const size_t digits = strlen(hex);
  if (digits % 2) {
    reply_error(rq->id, "InvalidArgument", "data has an odd number of hex digits");
    return false;
  }
  *len = digits / 2;
  if (*len > (size_t)g.msgsize) {
    reply_error(rq->id, "MessageTooLarge", "%zu bytes, the queues carry at most %ld", *len, g.msgsize);
    return false;
  }
  *buf = malloc(*len + 1);
  for (size_t i = 0; i < *len; ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(*buf);
      reply_error(rq->id, "InvalidArgument", "data is not hex");
      return false;
    }
    (*buf)[i] = (uint8_t)(hi * 16 + lo);
  }
  *priority = (int)p;
  return true;
}

static void reply_send_error(long long id, int priority, int e) {
  const int d = outbound();
  if (e == EAGAIN)
    reply_error(id, "Full", "ring %s/%s holds %ld of %ld messages", direction_name[d], priority_name[priority], g.depth,
                g.depth);
  else if (e == EMSGSIZE)
    reply_error(id, "MessageTooLarge", "the queues carry at most %ld bytes", g.msgsize);
  else
    reply_error(id, "IoError", "mq_send %s: %s", g.queue_name[d][priority], strerror(e));
}

/* A client's writes fail once the daemon has shut down (T-SHUTDOWN); while
 * it is merely dead they go on into c2d for a later daemon (T-KILLED). */
static bool client_may_write(long long id) {
  if (g.role != ROLE_CLIENT) return true;
  const struct daemon_info s = probe_daemon();
  if (!segment_shut_down(&s)) return true;
  reply_error(id, "Disconnected", "the daemon of %s has shut down", g.segment);
  return false;
}

static void op_write(const struct request *rq) {
  int p;
  uint8_t *buf;
  size_t len;
  if (!need_endpoint(rq->id) || !write_args(rq, &p, &buf, &len)) return;
  if (client_may_write(rq->id)) {
    if (mq_send(g.q[outbound()][p], (const char *)buf, len, 0) == 0)
      reply_ok(rq->id, "%s", no_sequence()); /* mq has no sequence numbers */
    else
      reply_send_error(rq->id, p, errno);
  }
  free(buf);
}

static void op_write_blocking(const struct request *rq) {
  int p;
  uint8_t *buf;
  size_t len;
  long long timeout_ms;
  if (!req_int(rq, "timeout_ms", &timeout_ms) || timeout_ms < 0) {
    reply_error(rq->id, "InvalidArgument", "write_blocking needs timeout_ms >= 0");
    return;
  }
  if (!need_endpoint(rq->id) || !write_args(rq, &p, &buf, &len)) return;
  if (!client_may_write(rq->id)) {
    free(buf);
    return;
  }
  const mqd_t q = g.q[outbound()][p];
  const uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000u;
  set_blocking(q, true);
  /* Sliced, so that a client notices a daemon that died (SPEC T-BLOCKING):
   * mq_timedsend returns as soon as there is room, whatever the slice. */
  for (;;) {
    const uint64_t now = now_ns(CLOCK_MONOTONIC);
    uint64_t slice = deadline > now ? deadline - now : 0;
    if (slice > SLICE_MS * 1000000u) slice = SLICE_MS * 1000000u;
    const struct timespec until = realtime_in(slice);
    if (mq_timedsend(q, (const char *)buf, len, 0, &until) == 0) {
      reply_ok(rq->id, "%s", no_sequence());
      break;
    }
    const int e = errno;
    if (e == EINTR) continue;
    if (e != ETIMEDOUT) {
      reply_send_error(rq->id, p, e);
      break;
    }
    if (now_ns(CLOCK_MONOTONIC) >= deadline) {
      reply_error(rq->id, "Timeout", "ring %s/%s stayed full for %lld ms", direction_name[outbound()], priority_name[p],
                  timeout_ms);
      break;
    }
    char detail[PATH_MAX + 64];
    const char *gone = g.role == ROLE_CLIENT ? client_peer_gone(detail, sizeof detail) : NULL;
    if (gone) {
      reply_error(rq->id, gone, "%s", detail);
      break;
    }
  }
  set_blocking(q, false);
  free(buf);
}

static void op_read(const struct request *rq) {
  if (!need_endpoint(rq->id)) return;
  char *buf = malloc((size_t)g.msgsize);
  int p;
  /* Reads go on after a shutdown: what is in the queues can still be read. */
  const ssize_t n = take_next(buf, &p);
  if (n < 0) {
    if (errno == EAGAIN)
      reply_error(rq->id, "Empty", "the %s queues are empty", direction_name[inbound()]);
    else
      reply_error(rq->id, "IoError", "mq_receive %s: %s", g.queue_name[inbound()][p], strerror(errno));
    free(buf);
    return;
  }
  static const char digits[] = "0123456789abcdef";
  char *hex = malloc(2 * (size_t)n + 1);
  for (ssize_t i = 0; i < n; ++i) {
    hex[2 * i] = digits[(uint8_t)buf[i] >> 4];
    hex[2 * i + 1] = digits[(uint8_t)buf[i] & 15];
  }
  hex[2 * n] = '\0';
  reply_ok(rq->id, ",\"priority\":%d%s,\"data\":\"%s\"", p, no_sequence(), hex);
  free(hex);
  free(buf);
}

static void op_wait(const struct request *rq) {
  long long timeout_ms;
  if (!req_int(rq, "timeout_ms", &timeout_ms) || timeout_ms < 0) {
    reply_error(rq->id, "InvalidArgument", "wait needs timeout_ms >= 0");
    return;
  }
  if (!need_endpoint(rq->id)) return;
  char detail[PATH_MAX + 128];
  switch (wait_inbound((uint64_t)timeout_ms * 1000000u, detail, sizeof detail)) {
    case WAIT_READY: reply_ok(rq->id, ""); break;
    case WAIT_TIMEOUT:
      reply_error(rq->id, "Timeout", "nothing arrived in %s within %lld ms", direction_name[inbound()], timeout_ms);
      break;
    case WAIT_GONE: reply_error(rq->id, "Disconnected", "%s", detail); break;
    case WAIT_BUSY: reply_error(rq->id, "InvalidState", "%s", detail); break;
    case WAIT_FAILED: reply_error(rq->id, "IoError", "%s", detail); break;
  }
}

static void op_shutdown(const struct request *rq) {
  if (!need_role(rq->id, ROLE_DAEMON)) return;
  /* The state file first: from then on clients see Disconnected. The queues
   * live on while someone has them open, so a client can still read what is
   * left in d2c (T-SHUTDOWN). */
  unlink(g.state_path);
  unlink_queues();
  close(g.lock_fd);
  g.lock_fd = -1;
  close_queues();
  g.shut_down = true;
  reply_ok(rq->id, "");
}

/* D-CLEANUP: removes what a dead daemon of PATH left: its six queues, its
 * state file, and the temporary files write_state_file names
 * "PATH.mq-daemon.<pid>.tmp". Any process may ask, with or without an
 * endpoint; it works on names of its own and leaves this process's endpoint
 * alone. Nothing here blocks: a probe with LOCK_NB, then unlinks. */

/* The directory and last component of `path`, as opendir and a name match
 * need them ("x" is "." and "x"; "/x" is "/" and "x"). */
static void split_path(const char *path, char *dir, size_t cap, const char **base) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    snprintf(dir, cap, ".");
    *base = path;
  } else {
    snprintf(dir, cap, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    *base = slash + 1;
  }
}

/* True if `name` is "<prefix><digits>.tmp"; the digits (a pid) in *pid. */
static bool temp_file_name(const char *name, const char *prefix, long *pid) {
  const size_t n = strlen(prefix);
  if (strncmp(name, prefix, n) != 0) return false;
  const char *digits = name + n, *end = digits;
  while (*end >= '0' && *end <= '9') ++end;
  if (end == digits || strcmp(end, ".tmp") != 0) return false;
  *pid = strtol(digits, NULL, 10);
  return true;
}

static void op_cleanup(const struct request *rq) {
  const char *path = req_str(rq, "segment");
  if (!path || !*path) {
    reply_error(rq->id, "InvalidArgument", "cleanup needs segment");
    return;
  }
  char state_path[PATH_MAX + 16], names[2][PRIORITIES][64];
  segment_names(path, state_path, names);

  /* A live daemon holds the state file's lock (this process's own, too:
   * flock locks belong to open file descriptions, so our probe conflicts
   * with our own daemon lock). */
  const struct daemon_info s = probe_state_file(state_path);
  if (s.alive) {
    if (s.parsed)
      reply_error(rq->id, "AlreadyExists", "daemon pid %ld (epoch %" PRIu64 ") serves %s", s.pid, s.epoch, path);
    else
      reply_error(rq->id, "AlreadyExists", "a live daemon holds the lock on %s", state_path);
    return;
  }

  /* Temporary state files: one still locked belongs to a daemon starting
   * right now (it locks the file before renaming it into place). Looked at
   * all before anything is removed; unlinked last. */
  char dir[PATH_MAX], prefix[PATH_MAX + 32], full[PATH_MAX + 260];
  const char *base;
  split_path(path, dir, sizeof dir, &base);
  snprintf(prefix, sizeof prefix, "%s.mq-daemon.", base);
  DIR *dp = opendir(dir); /* NULL: no directory, so no temporary files either */
  const struct dirent *e;
  long pid;
  while (dp && (e = readdir(dp)) != NULL) {
    if (!temp_file_name(e->d_name, prefix, &pid)) continue;
    snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
    const int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; /* gone meanwhile */
    const bool locked = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    if (locked) {
      closedir(dp);
      reply_error(rq->id, "AlreadyExists", "daemon pid %ld is starting on %s (%s is locked)", pid, path, full);
      return;
    }
  }

  /* The queues first, so that a connect racing with us finds NotFound
   * rather than queues without a daemon. ENOENT: it was not there. */
  int removed = 0, first_error = 0;
  char failed_name[sizeof full + 16] = "";
  for (int d = 0; d < 2; ++d)
    for (int p = 0; p < PRIORITIES; ++p) {
      if (mq_unlink(names[d][p]) == 0)
        ++removed;
      else if (errno != ENOENT && !first_error) {
        first_error = errno;
        snprintf(failed_name, sizeof failed_name, "mq_unlink %s", names[d][p]);
      }
    }
  const bool had_state = unlink(state_path) == 0;
  if (!had_state && errno != ENOENT && !first_error) {
    first_error = errno;
    snprintf(failed_name, sizeof failed_name, "unlink %s", state_path);
  }
  if (dp) {
    rewinddir(dp);
    while ((e = readdir(dp)) != NULL) {
      if (!temp_file_name(e->d_name, prefix, &pid)) continue;
      snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
      if (unlink(full) == 0)
        ++removed;
      else if (errno != ENOENT && !first_error) {
        first_error = errno;
        snprintf(failed_name, sizeof failed_name, "unlink %s", full);
      }
    }
    closedir(dp);
  }

  if (first_error) {
    reply_error(rq->id, errno_code(first_error), "cleanup of %s: %s: %s", path, failed_name, strerror(first_error));
    return;
  }
  if (removed == 0 && !had_state) {
    reply_error(rq->id, "NotFound", "nothing of %s to remove (no %s, no /memlink-mq-%.16s-* queues)", path, state_path,
                names[0][0] + strlen("/memlink-mq-"));
    return;
  }
  fprintf(stderr, "posix-mq pid %ld: cleanup of %s removed %d queues/temp files%s\n", (long)getpid(), path, removed,
          had_state ? " and the state file" : "");
  reply_ok(rq->id, "");
}

/* -------------------------------------------------------------- the workload */

static void on_sigterm(int sig) {
  (void)sig;
  g_term = 1;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdu;
  x ^= x >> 33;
  return x;
}

static uint32_t fnv1a32(const uint8_t *b, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 16777619u;
  return h;
}

/* A message id (chaos/history.hpp's MessageId). */
struct msg_id {
  uint8_t stream, priority;
  uint32_t writer;
  uint64_t n;
};

/* D-PAYLOAD, byte for byte chaos/history.cpp's encode_payload. */
static void encode_payload(const struct msg_id *id, uint8_t *out, size_t length) {
  out[0] = id->stream;
  out[1] = id->priority;
  put_le32(out + 2, id->writer);
  put_le64(out + 6, id->n);
  uint64_t x = mix(id->n * 31 + id->writer + ((uint64_t)id->priority << 40));
  for (size_t i = 14; i + 4 < length; ++i) {
    x = mix(x + i);
    out[i] = (uint8_t)x;
  }
  put_le32(out + length - 4, fnv1a32(out, length - 4));
}

/* True if `p` is an intact D-PAYLOAD (its id in *id); `scratch` holds
 * `length` bytes. */
static bool decode_payload(const uint8_t *p, size_t length, struct msg_id *id, uint8_t *scratch) {
  if (length < MIN_PAYLOAD || get_le32(p + length - 4) != fnv1a32(p, length - 4) || p[0] > 1) return false;
  id->stream = p[0];
  id->priority = p[1];
  id->writer = get_le32(p + 2);
  id->n = get_le64(p + 6);
  encode_payload(id, scratch, length); /* the filler must be what the id says */
  return memcmp(scratch, p, length) == 0;
}

/* One workload process: its log and two message buffers of g.msgsize. */
struct workload {
  int log;
  uint8_t *buf, *scratch;
};

/* D-RECORD: 48 bytes, little-endian, appended with one write(2) so that a
 * record is wholly in the log or not at all when the process is killed.
 * Positions and sequence numbers are always 0: mq has neither. */
static void put_record(const struct workload *w, char type, const struct msg_id *id, uint64_t t_ns, uint64_t position,
                       uint64_t epoch) {
  uint8_t b[48] = {0};
  b[0] = (uint8_t)type;
  b[1] = id->stream;
  b[2] = id->priority;
  put_le32(b + 4, id->writer);
  put_le64(b + 8, id->n); /* Serving: the epoch */
  put_le64(b + 16, t_ns);
  put_le64(b + 24, position); /* Serving: 0 fresh, 1 takeover */
  put_le64(b + 32, epoch);
  put_le64(b + 40, 0); /* sequence */
  if (write(w->log, b, sizeof b) != (ssize_t)sizeof b) fprintf(stderr, "posix-mq: log write: %s\n", strerror(errno));
}

/* splitmix64: small, and good enough to pick priorities and lengths. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* A length in [MIN_PAYLOAD, slot_size] (the modulo bias does not matter). */
static size_t random_length(uint64_t *rng, size_t slot_size) {
  return MIN_PAYLOAD + (size_t)(next_random(rng) % (slot_size - MIN_PAYLOAD + 1));
}

/* Sends one message without blocking: records Intent, then Ack or Fail (Full
 * is a Fail). True if it was sent. */
static bool send_logged(const struct workload *w, const struct msg_id *id, size_t length) {
  encode_payload(id, w->buf, length);
  put_record(w, 'I', id, now_ns(CLOCK_MONOTONIC), 0, 0);
  const bool sent = mq_send(g.q[outbound()][id->priority], (const char *)w->buf, length, 0) == 0;
  if (!sent && errno != EAGAIN) fprintf(stderr, "posix-mq: mq_send: %s\n", strerror(errno));
  put_record(w, sent ? 'A' : 'F', id, now_ns(CLOCK_MONOTONIC), 0, 0);
  return sent;
}

/* Takes one inbound message (take_next) and records Deliver if it is
 * intact and of the expected stream and priority, else Corrupt. True for
 * Deliver (its id in *id). With nothing there it waits up to
 * WORKLOAD_SLICE_MS (so SIGTERM is noticed) and answers false.
 *
 * It waits with wait_inbound, then takes with non-blocking mq_receives,
 * rather than blocking in mq_timedreceive: Linux hands a new message straight
 * to a receiver blocked in mq_receive, and if that receiver is killed before
 * it runs again the message is gone. This way only a kill in the few
 * instructions between mq_receive and the Deliver record loses one
 * (mq_receive is destructive; hence no two_step). */
static bool receive_logged(const struct workload *w, int stream, uint64_t epoch, struct msg_id *id) {
  int p;
  const uint64_t t = now_ns(CLOCK_MONOTONIC); /* Deliver: before the read began */
  const ssize_t n = take_next((char *)w->buf, &p);
  if (n < 0) {
    char detail[PATH_MAX + 128];
    enum wait_result r = WAIT_FAILED;
    if (errno == EAGAIN)
      r = wait_inbound(WORKLOAD_SLICE_MS * 1000000u, detail, sizeof detail);
    else
      snprintf(detail, sizeof detail, "mq_receive: %s", strerror(errno));
    if (r == WAIT_BUSY || r == WAIT_FAILED) fprintf(stderr, "posix-mq: %s\n", detail);
    if (r == WAIT_GONE || r == WAIT_BUSY || r == WAIT_FAILED) sleep_ns(2000000); /* e.g. the daemon is down */
    return false;
  }
  const bool intact = decode_payload(w->buf, (size_t)n, id, w->scratch) && id->stream == stream && id->priority == p;
  if (!intact) *id = (struct msg_id){.stream = (uint8_t)stream, .priority = (uint8_t)p};
  put_record(w, intact ? 'D' : 'C', id, t, 0, epoch);
  return intact;
}

static void run_writer(const struct workload *w, uint32_t writer, uint64_t seed, uint64_t rate, size_t slot_size) {
  uint64_t rng = seed * 1000003u + writer, n[PRIORITIES] = {0, 0, 0};
  const uint64_t gap_ns = rate > 0 ? 1000000000u / rate : 0;
  while (!g_term) {
    const uint8_t p = (uint8_t)(next_random(&rng) % PRIORITIES);
    const struct msg_id id = {.stream = C2D, .priority = p, .writer = writer, .n = n[p]++};
    if (!send_logged(w, &id, random_length(&rng, slot_size))) sleep_ns(1000000); /* Full: let it drain */
    if (gap_ns > 0) sleep_ns(gap_ns);
  }
}

static void run_reader(const struct workload *w) {
  struct msg_id id;
  while (!g_term) receive_logged(w, D2C, 0, &id);
}

static void run_daemon(const struct workload *w, uint64_t seed, size_t slot_size) {
  const struct msg_id serving = {.n = g.epoch};
  put_record(w, 'S', &serving, now_ns(CLOCK_MONOTONIC), g.takeover ? 1 : 0, 0);
  /* Nothing replaces this daemon while it lives (its lock stays held), so
   * it never records Fenced. */
  uint64_t rng = seed ^ (g.epoch * 0x9e3779b97f4a7c15u), answer_n[PRIORITIES] = {0, 0, 0};
  struct msg_id in;
  while (!g_term) {
    if (!receive_logged(w, C2D, g.epoch, &in)) continue;
    /* The answer: same priority, writer = this daemon's epoch. */
    const struct msg_id out = {
        .stream = D2C, .priority = in.priority, .writer = (uint32_t)g.epoch, .n = answer_n[in.priority]++};
    send_logged(w, &out, random_length(&rng, slot_size));
  }
}

static void op_workload(const struct request *rq) {
  const char *role = req_str(rq, "role"), *log = req_str(rq, "log");
  long long writer = 0, rate = 0, seed = 0, slot_size;
  if (!role || !log || !req_int(rq, "slot_size", &slot_size)) {
    reply_error(rq->id, "InvalidArgument", "workload needs role, log and slot_size");
    return;
  }
  req_int(rq, "writer", &writer);
  req_int(rq, "rate", &rate);
  req_int(rq, "seed", &seed);
  const bool daemon = strcmp(role, "daemon") == 0, writes = strcmp(role, "writer") == 0;
  if (!daemon && !writes && strcmp(role, "reader") != 0) {
    reply_error(rq->id, "InvalidArgument", "role %s is not writer, reader or daemon", role);
    return;
  }
  if (!need_role(rq->id, daemon ? ROLE_DAEMON : ROLE_CLIENT)) return;
  if (slot_size < MIN_PAYLOAD || slot_size > g.msgsize || writer < 0 || writer > UINT32_MAX || rate < 0) {
    reply_error(rq->id, "InvalidArgument", "slot_size %lld (must be in [%d, %ld]), writer %lld, rate %lld", slot_size,
                MIN_PAYLOAD, g.msgsize, writer, rate);
    return;
  }
  struct workload w = {.log = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)};
  if (w.log < 0) {
    reply_error(rq->id, errno_code(errno), "open %s: %s", log, strerror(errno));
    return;
  }
  w.buf = malloc((size_t)g.msgsize);
  w.scratch = malloc((size_t)g.msgsize);

  /* No SA_RESTART: SIGTERM must cut sigtimedwait and nanosleep short. */
  struct sigaction sa = {.sa_handler = on_sigterm};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  reply_ok(rq->id, "");

  if (daemon)
    run_daemon(&w, (uint64_t)seed, (size_t)slot_size);
  else if (writes)
    run_writer(&w, (uint32_t)writer, (uint64_t)seed, (uint64_t)rate, (size_t)slot_size);
  else
    run_reader(&w);

  /* SIGTERM: a daemon shuts down as `shutdown` does, so that its queues (kernel
   * objects, counted against RLIMIT_MSGQUEUE) do not outlive the run. */
  if (daemon) {
    unlink(g.state_path);
    unlink_queues();
  }
  close(w.log);
  free(w.buf);
  free(w.scratch);
  exit(0);
}

/* ---------------------------------------------------------------------- main */

static bool op_is(const char *op, const char *const *names) {
  for (; *names; ++names)
    if (strcmp(op, *names) == 0) return true;
  return false;
}

static void dispatch(const struct request *rq) {
  const char *op = req_str(rq, "op");
  if (!op) {
    reply_error(rq->id, "InvalidArgument", "the request has no \"op\"");
    return;
  }
  if (strcmp(op, "hello") == 0) {
    op_hello(rq);
    return;
  }
  if (!g.greeted) {
    reply_error(rq->id, "InvalidState", "hello must come first");
    return;
  }

  /* D-LIFECYCLE. Valid in every state: hello, cleanup, arm, release, reset
   * (arm and release are Unsupported here: no crash or pause points). Every
   * other op of the protocol needs an endpoint, and some a role; what the
   * state refuses is InvalidState before anything is Unsupported. */
  static const char *const any_state[] = {"cleanup", "arm", "release", "reset", NULL};
  static const char *const fresh_only[] = {"create", "connect", NULL};
  static const char *const daemon_only[] = {"shutdown", "set_backpressure", NULL};
  static const char *const client_only[] = {"disconnect", NULL};
  static const char *const endpoint_ops[] = {"write",       "write_blocking", "read",    "peek",     "take",
                                             "finish",      "wait",           "observe", "workload", "stop_writer",
                                             "stop_reader", "recover",        "corrupt", NULL};
  const bool known = op_is(op, any_state) || op_is(op, fresh_only) || op_is(op, daemon_only) ||
                     op_is(op, client_only) || op_is(op, endpoint_ops);
  if (known && !op_is(op, any_state) && !op_is(op, fresh_only)) {
    if (g.role == ROLE_NONE) {
      reply_error(rq->id, "InvalidState", "%s needs an endpoint: create or connect first", op);
      return;
    }
    if (op_is(op, daemon_only) && g.role != ROLE_DAEMON) {
      reply_error(rq->id, "InvalidState", "a client cannot %s: only the daemon may", op);
      return;
    }
    if (op_is(op, client_only) && g.role != ROLE_CLIENT) {
      reply_error(rq->id, "InvalidState", "the daemon cannot %s: only a client may (reset ends a daemon)", op);
      return;
    }
  }

  static const struct {
    const char *name;
    void (*fn)(const struct request *);
  } ops[] = {
      {"create", op_create},
      {"connect", op_connect},
      {"disconnect", op_disconnect},
      {"write", op_write},
      {"write_blocking", op_write_blocking},
      {"read", op_read},
      {"wait", op_wait},
      {"shutdown", op_shutdown},
      {"workload", op_workload},
      {"cleanup", op_cleanup},
      {"reset", op_reset},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; ++i)
    if (strcmp(op, ops[i].name) == 0) {
      ops[i].fn(rq);
      return;
    }
  if (strcmp(op, "peek") == 0) {
    reply_error(rq->id, "Unsupported", "mq cannot look at a message without taking it");
    return;
  }
  if (strcmp(op, "take") == 0 || strcmp(op, "finish") == 0) {
    reply_error(rq->id, "Unsupported", "mq_receive is destructive: no two-step read");
    return;
  }
  reply_error(rq->id, "Unsupported", "posix-mq does not implement %s", op);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf(
          "usage: %s\n\nPOSIX message queues as a conformance driver: speaks conformance/DRIVER.md,\n"
          "driver protocol %d (and %d), one JSON request per line on stdin, one answer per\n"
          "line on stdout.\n",
          argv[0], PROTOCOL, PROTOCOL_OLD);
      return 0;
    }
    if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
      printf("memlink-driver-posix-mq %s (driver protocol %d)\n", DRIVER_VERSION, PROTOCOL);
      return 0;
    }
    fprintf(stderr, "%s: unknown argument '%s' (see --help)\n", argv[0], argv[i]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* NOTIFY_SIGNAL is only ever collected with sigtimedwait (op_wait). */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, NOTIFY_SIGNAL);
  sigprocmask(SIG_BLOCK, &set, NULL);

  char *line = NULL;
  size_t cap = 0;
  struct request rq;
  while (getline(&line, &cap, stdin) >= 0) {
    const char *why = NULL;
    if (!parse_request(line, &rq, &why)) {
      reply_error(-1, "InvalidArgument", "malformed request (%s)", why);
    } else {
      if (req_int(&rq, "id", &rq.id))
        dispatch(&rq);
      else
        reply_error(-1, "InvalidArgument", "the request has no integer \"id\"");
    }
    free_request(&rq);
  }
  free(line);
  return 0; /* end of stdin (D-PROC); a live daemon's lock goes with us */
}
