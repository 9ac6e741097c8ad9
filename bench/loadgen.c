/*
 * loadgen -- MQTT 3.1.1 over mutual TLS load generator for the iotgw benchmark.
 *
 * One thread, one epoll instance, non-blocking sockets and non-blocking OpenSSL (every
 * WANT_READ / WANT_WRITE becomes an epoll interest change, never a blocking call or a spin).
 *
 * Modes:
 *   pub   open N connections, CONNECT, then publish QoS 1 readings keeping up to W unacked
 *         PUBLISHes per connection until M are PUBACKed or the time limit passes. With
 *         --rate R each connection publishes R readings per second instead (phases spread
 *         evenly over the first period), still never more than W unacked.
 *         With --go-line it prints a "connected" line once every connection is up, starts
 *         publishing when a line arrives on stdin, and after its result line holds the
 *         connections until stdin reaches EOF: a harness can then measure the publishing
 *         alone, without the handshakes and the goodbyes.
 *         Every PUBACK is matched to its PUBLISH: the latency from the moment the PUBLISH
 *         is handed to SSL_write (same loop iteration as its write) to the moment its PUBACK
 *         is parsed goes into a log-scale histogram (16 buckets per octave, ~6 % wide).
 *   idle  open N connections, CONNECT, print a "ready" line, then hold them (PINGREQ at the
 *         keepalive interval) until stdin reaches EOF, SIGINT/SIGTERM, or the time limit.
 *   sub   one connection that SUBSCRIBEs to a filter and counts PUBLISHes (acking QoS 1/2)
 *         until M arrived, the time limit passes, or nothing arrived for --idle-exit seconds.
 *   conn  N new connections, at most --max-handshakes in progress at once: TCP connect, a
 *         full TLS handshake (no session resumption: the session cache is off and each
 *         connection has its own SSL), CONNECT, CONNACK, then DISCONNECT, close_notify and
 *         close. Connection-to-CONNACK times go into the same kind of histogram.
 *   storm open N connections as idle does, each publishing one QoS 1 reading after its
 *         CONNACK, and print a "ready" line once every one has its PUBACK. From then on a
 *         lost connection reconnects (after 100 ms, doubling per failed attempt up to
 *         500 ms, with jitter, as device firmware does), offering its last TLS session
 *         with --resume, and publishes one reading again. Once every connection is back
 *         with its reading acknowledged, a "back" line gives the time of the first loss
 *         and of the last return (t_* monotonic) and how many handshakes resumed, and the
 *         run ends: the reconnect storm after a server restart.
 *   subflood  (hostile load, bench/hostile.py) open N connections, CONNECT, then keep W
 *         SUBSCRIBE packets of --filters F topic filters each unanswered per connection,
 *         sending the next one at each SUBACK, until M SUBACKs or the time limit. Filter i
 *         is --filter with "{i}" replaced by i. Counts the granted and refused return codes.
 *
 * pub --phases (with --go-line): after the go line, each further line on stdin starts the
 * next phase (at most 8) and the line "end" stops publishing; loadgen then waits (at most
 * --drain seconds) for the PUBACKs still outstanding and prints its result line with one
 * latency histogram per phase, each PUBACK counted in the phase its PUBLISH was sent in.
 * sub: each line on stdin is answered with a "count" line (arrivals so far).
 * --bind ADDR (every mode) makes the connections from that local address (e.g. 127.0.0.2),
 * so that a hostile load and the honest devices have different source addresses.
 *
 * Output: one JSON object per line on stdout ("event" lines while running, a final result
 * line with "mode"). Diagnostics go to stderr. Timestamps named t_* are CLOCK_MONOTONIC
 * seconds, the clock Python's time.monotonic() reads on Linux, so the harness can combine
 * the publisher's and the subscriber's timestamps.
 *
 * Everything is bounded: by count and by --time-limit (default 120 s), by the number of
 * handshakes in progress (--max-handshakes) and by an fd budget (--max-conns, default 5000,
 * never more than RLIMIT_NOFILE minus a margin).
 *
 * Build: cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -o loadgen loadgen.c -lssl -lcrypto
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

enum mode { MODE_PUB, MODE_IDLE, MODE_SUB, MODE_CONN, MODE_SUBFLOOD, MODE_STORM };

enum cstate {
	CS_PENDING,       /* not started yet */
	CS_TCP,           /* non-blocking connect() in progress */
	CS_TLS,           /* TLS handshake in progress */
	CS_CONNACK,       /* CONNECT sent, waiting for CONNACK */
	CS_SUBACK,        /* sub mode: SUBSCRIBE sent, waiting for SUBACK */
	CS_READY,         /* MQTT session up */
	CS_DEAD,          /* failed or closed */
};

struct buf {
	unsigned char *p;
	size_t off, len, cap;
};

/* A PUBLISH waiting for its PUBACK: packet id (0 = free slot) and when it was sent. */
struct pending {
	uint16_t id;
	uint8_t phase;          /* pub --phases: the phase it was sent in */
	double t;
};

struct conn {
	int fd;
	int idx;
	SSL *ssl;
	enum cstate st;
	uint32_t interest;      /* events currently registered with epoll */
	bool want_out;          /* SSL_write (or the handshake) is waiting for writability */
	bool read_wants_out;    /* SSL_read is waiting for writability (e.g. a TLS 1.3 KeyUpdate) */
	struct buf in, out;
	unsigned inflight;
	uint16_t next_id;
	double t_start;         /* when the connection attempt began */
	double last_tx;         /* last time anything was queued for sending */
	double next_due;        /* pub --rate: when the next reading is due */
	struct pending *pend;   /* pub: unacknowledged PUBLISHes, indexed by id & pend_mask */
	/* storm */
	bool up;                /* its reading after the last CONNACK was acknowledged */
	unsigned tries;         /* failed attempts since it was last up (backoff) */
	double retry_at;        /* when it reconnects (on the retry queue) */
	SSL_SESSION *sess;      /* --resume: the last session the server gave it */
	X509 *cert;             /* --mint-ca-*: its own certificate, minted once */
	EVP_PKEY *key;
};

static struct {
	enum mode mode;
	const char *host, *port, *ca, *cert, *key, *mint_ca_cert, *mint_ca_key;
	const char *servername, *prefix, *topic, *filter, *bind;
	int tls;                /* 0 any (1.2+), 12, 13 */
	bool verify_host, go_line, phases, resume;
	long conns, messages, window, max_handshakes, max_conns, keepalive, qos;
	long show, filters;
	double time_limit, connect_timeout, idle_exit, rate, drain;
} opt = {
	.host = "127.0.0.1", .port = "8883", .prefix = "bench-", .topic = "iot-2/evt/status/fmt/json",
	.filter = "#", .tls = 0, .verify_host = true, .conns = 1, .messages = 1000, .window = 10,
	.max_handshakes = 64, .max_conns = 5000, .keepalive = 60, .qos = 1, .time_limit = 120,
	.connect_timeout = 30, .idle_exit = 0, .filters = 256, .drain = 30,
};

static SSL_CTX *g_ctx;
static X509 *g_mint_ca;
static EVP_PKEY *g_mint_key;
static struct addrinfo *g_addr;
static int g_ep = -1;
static struct conn *g_conns;
static long g_next_start;       /* next connection index to start */
static long g_in_progress;      /* started but not yet READY or DEAD */
static long g_connected, g_failed, g_refused, g_closed_after_up;
static long g_errors_printed;
static uint64_t g_sent, g_acked, g_received, g_dups;
static bool g_publishing, g_stop, g_timed_out, g_subscribed;
static double g_t0, g_t_all_connected, g_t_first_pub, g_t_last_ack, g_t_first_rx, g_t_last_rx;
static long g_handshakes;       /* conn: connections that reached CONNACK and were closed */
static bool g_go, g_said_connected, g_stdin_eof; /* pub --go-line */
static unsigned g_pend_mask;    /* pub: size of each connection's pending table minus 1 */
static uint64_t g_lat_lost;     /* pub: PUBLISHes whose slot was reused before their PUBACK */
static uint64_t g_lat_unmatched;/* pub: PUBACKs for no PUBLISH we know of */
static struct addrinfo *g_bind;  /* --bind: local address of every connection */
#define MAX_PHASES 8
static unsigned g_phase;        /* pub --phases: the current phase */
static uint64_t g_phase_sent[MAX_PHASES], g_phase_acked[MAX_PHASES];
static double g_phase_t[MAX_PHASES];
static bool g_pub_ended, g_drain_timed_out; /* pub --phases: "end" read */
static double g_drain_deadline;
static char g_line[64];         /* pub --phases: the stdin line being read */
static size_t g_line_len;
static unsigned char *g_subflood;       /* subflood: the SUBSCRIBE packet (id at g_subflood_id) */
static size_t g_subflood_len, g_subflood_id;
static uint64_t g_codes_granted, g_codes_refused; /* subflood: SUBACK return codes */
static long g_up;               /* storm: connections up with their reading acknowledged */
static bool g_storm_ready;      /* storm: all were up once ("ready" printed) */
static double g_t_drop, g_t_back; /* storm: first loss after ready, all back again */
static long g_resumed, g_full;  /* storm: handshakes after the first loss */
static long *g_retry;           /* storm: FIFO of connections waiting to reconnect */
static long g_retry_head, g_retry_len;

#define EV_STDIN  ((uint64_t)-1)
#define EV_SIGNAL ((uint64_t)-2)
#define MAX_IN    (1u << 20)    /* largest MQTT packet accepted from the server */

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(2);
}

/* Connection failures are expected under overload; print the first few, count the rest. */
static void conn_error(const struct conn *c, const char *what, const char *detail)
{
	if (g_errors_printed++ < 10)
		fprintf(stderr, "loadgen: conn %d: %s%s%s\n", c->idx, what, detail ? ": " : "",
			detail ? detail : "");
}

static void ssl_error(const struct conn *c, const char *what, int ssl_err)
{
	char msg[256];
	unsigned long e = ERR_get_error();
	if (e) {
		ERR_error_string_n(e, msg, sizeof msg);
	} else if (ssl_err == SSL_ERROR_SYSCALL) {
		snprintf(msg, sizeof msg, "syscall: %s", errno ? strerror(errno) : "unexpected EOF");
	} else {
		snprintf(msg, sizeof msg, "SSL error %d", ssl_err);
	}
	ERR_clear_error();
	conn_error(c, what, msg);
}

/* ---- numbers ------------------------------------------------------------------------- */

static long parse_long(const char *name, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die("%s: expected an integer in %ld..%ld, got '%s'", name, lo, hi, s);
	return v;
}

static double parse_double(const char *name, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		die("%s: expected a number in %g..%g, got '%s'", name, lo, hi, s);
	return v;
}

/* ---- latency histogram ---------------------------------------------------------------- */

/* Log-scale histogram of durations in nanoseconds: values below 16 ns have a bucket each;
 * above, 16 buckets per power of two (each ~6 % wide). The exact maximum is kept too. */
#define HIST_SUB 16
#define HIST_BUCKETS (HIST_SUB * 61)

struct hist {
	uint64_t n[HIST_BUCKETS];
	uint64_t count;
	double sum, max;        /* seconds */
};

static struct hist g_lat;       /* pub: PUBACK latency; conn: connect start to CONNACK */
static struct hist g_phase_lat[MAX_PHASES]; /* pub --phases: PUBACK latency by phase sent */

static unsigned hist_bucket(uint64_t ns)
{
	if (ns < HIST_SUB)
		return (unsigned)ns;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* 4 .. 63 */
	unsigned m = (unsigned)(ns >> (e - 4)) & (HIST_SUB - 1);
	unsigned b = (e - 3) * HIST_SUB + m;
	return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* Upper bound (exclusive) of bucket b, in nanoseconds. */
static double hist_upper_ns(unsigned b)
{
	if (b < HIST_SUB)
		return (double)b + 1;
	unsigned e = b / HIST_SUB + 3, m = b % HIST_SUB;
	return (double)(HIST_SUB + m + 1) * (double)(UINT64_C(1) << (e - 4));
}

static void hist_add(struct hist *h, double seconds)
{
	if (seconds < 0)
		seconds = 0;
	uint64_t ns = seconds >= 9e18 / 1e9 ? UINT64_C(9000000000000000000)
					    : (uint64_t)(seconds * 1e9);
	h->n[hist_bucket(ns)]++;
	h->count++;
	h->sum += seconds;
	if (seconds > h->max)
		h->max = seconds;
}

/* The q-quantile in milliseconds: the upper bound of the bucket holding the
 * ceil(q * count)-th smallest value, never above the exact maximum. */
static double hist_quantile_ms(const struct hist *h, double q)
{
	if (!h->count)
		return -1;
	double want = q * (double)h->count;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->n[b];
		if (seen >= rank) {
			double ms = hist_upper_ns(b) / 1e6;
			return ms < h->max * 1e3 ? ms : h->max * 1e3;
		}
	}
	return h->max * 1e3;
}

/* ,"<name>_n":..,"<name>_p50_ms":.. etc. for the result line. */
static void hist_print(const struct hist *h, const char *name)
{
	printf(",\"%s_n\":%" PRIu64 ",\"%s_mean_ms\":%.4f,\"%s_p50_ms\":%.4f,\"%s_p90_ms\":%.4f,"
	       "\"%s_p99_ms\":%.4f,\"%s_p999_ms\":%.4f,\"%s_max_ms\":%.4f", name, h->count, name,
	       h->count ? h->sum / (double)h->count * 1e3 : -1.0, name, hist_quantile_ms(h, 0.50),
	       name, hist_quantile_ms(h, 0.90), name, hist_quantile_ms(h, 0.99), name,
	       hist_quantile_ms(h, 0.999), name, h->count ? h->max * 1e3 : -1.0);
}

/* ---- buffers ------------------------------------------------------------------------- */

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->off && b->off == b->len) {
		b->off = b->len = 0;
	}
	if (b->len + extra <= b->cap)
		return;
	if (b->off) {
		/* Moving pending bytes is fine for TLS retries: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
		 * only requires the same content, and we only ever append. */
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + extra <= b->cap)
			return;
	}
	size_t cap = b->cap ? b->cap : 512;
	while (cap < b->len + extra)
		cap *= 2;
	unsigned char *p = realloc(b->p, cap);
	if (!p)
		die("out of memory");
	b->p = p;
	b->cap = cap;
}

static void buf_put(struct buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* ---- MQTT 3.1.1 encoding (section numbers refer to the OASIS standard) ---------------- */

static size_t put_varlen(unsigned char *p, size_t n)
{
	size_t i = 0;
	do { /* 2.2.3 remaining length */
		unsigned char d = (unsigned char)(n % 128);
		n /= 128;
		if (n)
			d |= 0x80;
		p[i++] = d;
	} while (n);
	return i;
}

static void put_packet(struct conn *c, unsigned char type_flags, const unsigned char *body,
		       size_t blen)
{
	unsigned char hdr[5];
	hdr[0] = type_flags;
	size_t h = 1 + put_varlen(hdr + 1, blen);
	buf_put(&c->out, hdr, h);
	if (blen)
		buf_put(&c->out, body, blen);
	c->last_tx = now_mono();
}

static size_t put_str(unsigned char *p, const char *s, size_t n)
{
	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

static void client_id(const struct conn *c, char *out, size_t n)
{
	snprintf(out, n, "%s%05d", opt.prefix, c->idx);
}

static void send_connect(struct conn *c)
{
	char id[128];
	client_id(c, id, sizeof id);
	size_t idlen = strlen(id);
	unsigned char body[160];
	size_t n = put_str(body, "MQTT", 4);       /* 3.1.2.1 protocol name */
	body[n++] = 4;                            /* 3.1.2.2 level 4 = 3.1.1 */
	body[n++] = 0x02;                         /* 3.1.2.4 clean session */
	body[n++] = (unsigned char)(opt.keepalive >> 8);
	body[n++] = (unsigned char)opt.keepalive;
	n += put_str(body + n, id, idlen);         /* 3.1.3.1 client identifier */
	put_packet(c, 0x10, body, n);
}

static uint16_t next_packet_id(struct conn *c)
{
	if (++c->next_id == 0) /* 2.3.1: packet identifiers are non-zero */
		c->next_id = 1;
	return c->next_id;
}

static void send_subscribe(struct conn *c)
{
	size_t flen = strlen(opt.filter);
	unsigned char *body = malloc(flen + 5);
	if (!body)
		die("out of memory");
	uint16_t id = next_packet_id(c);
	body[0] = (unsigned char)(id >> 8);
	body[1] = (unsigned char)id;
	size_t n = 2 + put_str(body + 2, opt.filter, flen);
	body[n++] = (unsigned char)opt.qos;
	put_packet(c, 0x82, body, n);             /* 3.8.1: SUBSCRIBE flags are 0010 */
	free(body);
}

/* subflood: the SUBSCRIBE packet, built once (--filters filters, "{i}" in --filter replaced
 * by the filter's index); each send patches in a fresh packet id. */
static void build_subflood(void)
{
	struct buf b = {0};
	const unsigned char zero[2] = {0, 0};
	buf_put(&b, zero, 2);
	const char *mark = strstr(opt.filter, "{i}");
	for (long i = 0; i < opt.filters; i++) {
		char f[1100];
		int n = mark ? snprintf(f, sizeof f, "%.*s%ld%s", (int)(mark - opt.filter), opt.filter,
					i, mark + 3)
			     : snprintf(f, sizeof f, "%s", opt.filter);
		const unsigned char len[2] = {(unsigned char)(n >> 8), (unsigned char)n};
		const unsigned char qos = (unsigned char)opt.qos;
		buf_put(&b, len, 2);
		buf_put(&b, f, (size_t)n);
		buf_put(&b, &qos, 1);
	}
	unsigned char hdr[5];
	hdr[0] = 0x82;                            /* 3.8.1: SUBSCRIBE flags are 0010 */
	size_t h = 1 + put_varlen(hdr + 1, b.len);
	if (!(g_subflood = malloc(h + b.len)))
		die("out of memory");
	memcpy(g_subflood, hdr, h);
	memcpy(g_subflood + h, b.p, b.len);
	g_subflood_len = h + b.len;
	g_subflood_id = h;
	buf_free(&b);
}

static void send_subflood(struct conn *c)
{
	uint16_t id = next_packet_id(c);
	buf_reserve(&c->out, g_subflood_len);
	unsigned char *p = c->out.p + c->out.len;
	memcpy(p, g_subflood, g_subflood_len);
	p[g_subflood_id] = (unsigned char)(id >> 8);
	p[g_subflood_id + 1] = (unsigned char)id;
	c->out.len += g_subflood_len;
	c->inflight++;
	c->last_tx = now_mono();
	g_sent++;
}

static void send_publish(struct conn *c)
{
	static size_t tlen;
	if (!tlen)
		tlen = strlen(opt.topic);
	char payload[96];
	/* Temperatures 15.0 .. 29.9 C: inside every decoder's accepted range. */
	int plen = snprintf(payload, sizeof payload, "{\"d\":{\"temp\":%.1f,\"humidity\":40}}",
			    15.0 + (double)(g_sent % 150) / 10.0);
	unsigned char hdr[8];
	size_t blen = 2 + tlen + 2 + (size_t)plen;
	hdr[0] = 0x32;                            /* 3.3.1: PUBLISH, QoS 1 */
	size_t h = 1 + put_varlen(hdr + 1, blen);
	uint16_t id = next_packet_id(c);
	buf_reserve(&c->out, h + blen);
	buf_put(&c->out, hdr, h);
	unsigned char tl[2] = {(unsigned char)(tlen >> 8), (unsigned char)tlen};
	buf_put(&c->out, tl, 2);
	buf_put(&c->out, opt.topic, tlen);
	unsigned char pid[2] = {(unsigned char)(id >> 8), (unsigned char)id};
	buf_put(&c->out, pid, 2);
	buf_put(&c->out, payload, (size_t)plen);
	c->inflight++;
	c->last_tx = now_mono();
	g_sent++;
	/* The caller flushes in the same loop iteration, so this is when it is written. */
	struct pending *pd = &c->pend[id & g_pend_mask];
	if (pd->id)
		g_lat_lost++; /* a PUBACK more than the table's size late: its sample is lost */
	pd->id = id;
	pd->phase = (uint8_t)g_phase;
	pd->t = c->last_tx;
	g_phase_sent[g_phase]++;
}

static void got_puback(struct conn *c, uint16_t id, double t)
{
	struct pending *pd = &c->pend[id & g_pend_mask];
	if (id && pd->id == id) {
		hist_add(&g_lat, t - pd->t);
		hist_add(&g_phase_lat[pd->phase], t - pd->t);
		g_phase_acked[pd->phase]++;
		pd->id = 0;
	} else {
		g_lat_unmatched++;
	}
}

static void send_ack(struct conn *c, unsigned char type_flags, uint16_t id)
{
	unsigned char body[2] = {(unsigned char)(id >> 8), (unsigned char)id};
	put_packet(c, type_flags, body, 2);
}

/* ---- connection life cycle ------------------------------------------------------------ */

static void set_interest(struct conn *c)
{
	if (c->fd < 0)
		return;
	uint32_t ev = EPOLLIN;
	if (c->st == CS_TCP || c->want_out || c->read_wants_out)
		ev |= EPOLLOUT;
	if (ev == c->interest)
		return;
	struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)c->idx};
	if (epoll_ctl(g_ep, c->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->interest = ev;
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd); /* also removes it from the epoll set */
		c->fd = -1;
	}
	c->interest = 0;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->pend);
	c->pend = NULL;
}

static void check_all_done(void);

/* storm: c was lost; keep its session (--resume) and queue its reconnection. */
static void storm_lost(struct conn *c)
{
	if (opt.resume && c->ssl && SSL_is_init_finished(c->ssl)) {
		SSL_SESSION *s = SSL_get1_session(c->ssl);
		if (s && SSL_SESSION_is_resumable(s)) {
			SSL_SESSION_free(c->sess);
			c->sess = s;
		} else {
			SSL_SESSION_free(s);
		}
		/* SSL_free of a connection that was not shut down marks its session not
		 * resumable (ssl_clear_bad_session); a device keeps it whatever ended the
		 * connection, as mbedTLS and BearSSL clients do. */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	}
	conn_close(c);
	if (c->up) {
		c->up = false;
		g_up--;
		if (g_storm_ready && g_t_drop == 0)
			g_t_drop = now_mono();
	}
	if (g_stop)
		return;
	double delay = 0.1 * (double)(1u << (c->tries < 3 ? c->tries : 3));
	if (delay > 0.5)
		delay = 0.5;
	c->tries++;
	/* Jitter, +-25 %: firmware that backs off in lockstep would hit the server in waves. */
	delay *= 0.75 + 0.5 * (double)(rand() % 1000) / 1000.0;
	c->retry_at = now_mono() + delay;
	c->st = CS_PENDING;
	g_retry[(g_retry_head + g_retry_len++) % opt.conns] = c->idx;
}

static void conn_start(struct conn *c);

/* storm: start the reconnections that are due (delays are near FIFO: one jittered later
 * than its successor waits behind it by at most the jitter). Returns the seconds until the
 * next is due, or 1. */
static double storm_retry(double t)
{
	while (g_retry_len && g_in_progress < opt.max_handshakes) {
		struct conn *c = &g_conns[g_retry[g_retry_head]];
		if (c->retry_at > t)
			return c->retry_at - t;
		g_retry_head = (g_retry_head + 1) % opt.conns;
		g_retry_len--;
		conn_start(c);
	}
	return g_retry_len ? 0.001 : 1.0;
}

static void conn_fail(struct conn *c)
{
	if (c->st == CS_DEAD)
		return;
	if (c->st == CS_READY) {
		g_closed_after_up++;
		g_connected--;
	} else {
		g_in_progress--;
		g_failed++;
	}
	c->st = CS_DEAD;
	if (opt.mode == MODE_STORM) {
		storm_lost(c);
		return;
	}
	conn_close(c);
	check_all_done();
}

static X509 *mint_cert(const char *cn, EVP_PKEY **keyp)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char serial[8];
	if (!k || !x || !name || RAND_bytes(serial, sizeof serial) != 1)
		die("mint: out of memory");
	serial[0] &= 0x7f;
	uint64_t s = 0;
	for (size_t i = 0; i < sizeof serial; i++)
		s = (s << 8) | serial[i];
	X509_set_version(x, 2);
	ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), s ? s : 1);
	X509_set_issuer_name(x, X509_get_subject_name(g_mint_ca));
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_NAME_free(name);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 2L * 86400);
	X509_set_pubkey(x, k);
	static const struct { int nid; const char *val; } exts[] = {
		{NID_basic_constraints, "critical,CA:FALSE"},
		{NID_key_usage, "critical,digitalSignature"},
		{NID_ext_key_usage, "clientAuth"},
		{NID_subject_key_identifier, "hash"},
		{NID_authority_key_identifier, "keyid"},
	};
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, g_mint_ca, x, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].val);
		if (!e || !X509_add_ext(x, e, -1))
			die("mint: cannot add extension %d", exts[i].nid);
		X509_EXTENSION_free(e);
	}
	if (!X509_sign(x, g_mint_key, EVP_sha256()))
		die("mint: cannot sign with the CA key");
	*keyp = k;
	return x;
}

/* A device has one certificate for life: minted at its first connection (or
 * before the run, mint_all) and kept for every reconnection, so that no
 * timed phase pays for key generation and signing a device never does. */
static void mint_for(struct conn *c)
{
	if (c->cert)
		return;
	char cn[128];
	client_id(c, cn, sizeof cn);
	c->cert = mint_cert(cn, &c->key);
}

static double g_mint_cpu; /* CPU seconds mint_all took */

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void mint_all(void)
{
	double c0 = cpu_now();
	for (long i = 0; i < opt.conns; i++)
		mint_for(&g_conns[i]);
	g_mint_cpu = cpu_now() - c0;
}

static void tls_progress(struct conn *c);

static void conn_start(struct conn *c)
{
	c->t_start = now_mono();
	g_in_progress++;
	if ((opt.mode == MODE_PUB || opt.mode == MODE_STORM) &&
	    !(c->pend = calloc((size_t)g_pend_mask + 1, sizeof *c->pend)))
		die("out of memory");
	c->fd = socket(g_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_error(c, "socket", strerror(errno));
		conn_fail(c);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (g_bind) {
		/* The port is chosen at connect(), per destination, not from the bind range. */
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(c->fd, g_bind->ai_addr, g_bind->ai_addrlen) < 0) {
			conn_error(c, "bind", strerror(errno));
			conn_fail(c);
			return;
		}
	}
	c->ssl = SSL_new(g_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		die("SSL_new failed");
	SSL_set_connect_state(c->ssl);
	if (c->sess) {
		/* A copy per attempt: a failed handshake (the server refused or went away)
		 * sends a fatal alert, which marks the offered session not resumable, and a
		 * device keeps its session across failed attempts. */
		SSL_SESSION *s = SSL_SESSION_dup(c->sess);
		if (s) {
			SSL_set_session(c->ssl, s);
			SSL_SESSION_free(s);
		}
	}
	if (opt.servername) {
		SSL_set_tlsext_host_name(c->ssl, opt.servername);
		if (opt.verify_host)
			SSL_set1_host(c->ssl, opt.servername);
	} else if (opt.verify_host) {
		/* Check the address we dial against the certificate's IP SANs (or its DNS name). */
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), opt.host)) {
			SSL_set_tlsext_host_name(c->ssl, opt.host);
			SSL_set1_host(c->ssl, opt.host);
		}
	}
	if (g_mint_ca) {
		mint_for(c);
		if (SSL_use_certificate(c->ssl, c->cert) != 1 ||
		    SSL_use_PrivateKey(c->ssl, c->key) != 1)
			die("cannot use the minted certificate");
	}
	if (connect(c->fd, g_addr->ai_addr, g_addr->ai_addrlen) == 0) {
		c->st = CS_TLS;
		tls_progress(c);
		return;
	}
	if (errno != EINPROGRESS) {
		conn_error(c, "connect", strerror(errno));
		conn_fail(c);
		return;
	}
	c->st = CS_TCP;
	set_interest(c);
}

/* Start connections while fewer than --max-handshakes are in progress. */
static void start_more(void)
{
	while (!g_stop && g_next_start < opt.conns && g_in_progress < opt.max_handshakes)
		conn_start(&g_conns[g_next_start++]);
}

static void flush_out(struct conn *c)
{
	c->want_out = false;
	while (c->st != CS_DEAD && c->out.off < c->out.len) {
		size_t n = c->out.len - c->out.off;
		int w = SSL_write(c->ssl, c->out.p + c->out.off, n > INT_MAX ? INT_MAX : (int)n);
		if (w > 0) {
			c->out.off += (size_t)w;
			continue;
		}
		int err = SSL_get_error(c->ssl, w);
		if (err == SSL_ERROR_WANT_WRITE) {
			c->want_out = true;
			return;
		}
		if (err == SSL_ERROR_WANT_READ) /* TLS wants the peer first; EPOLLIN is always on */
			return;
		ssl_error(c, "write", err);
		conn_fail(c);
		return;
	}
	if (c->out.off == c->out.len)
		c->out.off = c->out.len = 0;
}


/* Every connection attempt has ended (up or failed): note the time, tell the harness. */
static void check_all_done(void)
{
	if (g_t_all_connected == 0 && g_next_start == opt.conns && g_in_progress == 0) {
		g_t_all_connected = now_mono();
		if (opt.mode == MODE_IDLE) {
			printf("{\"event\":\"ready\",\"connected\":%ld,\"failed\":%ld,"
			       "\"connect_seconds\":%.3f}\n", g_connected, g_failed,
			       g_t_all_connected - g_t0);
			fflush(stdout);
		}
	}
}

/* conn: CONNACK arrived. Count the connection, then DISCONNECT, close_notify and close,
 * best effort (a failure to say goodbye does not undo the handshake). */
static void conn_finish(struct conn *c)
{
	static const unsigned char disconnect[2] = {0xe0, 0x00}; /* 3.14 */
	hist_add(&g_lat, now_mono() - c->t_start);
	g_in_progress--;
	g_handshakes++;
	ERR_clear_error();
	if (c->out.off == c->out.len)
		(void)SSL_write(c->ssl, disconnect, sizeof disconnect);
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	c->st = CS_DEAD;
	conn_close(c);
	check_all_done();
}

static void became_ready(struct conn *c)
{
	c->st = CS_READY;
	g_in_progress--;
	g_connected++;
	check_all_done();
}

static void top_up(struct conn *c)
{
	if (g_pub_ended)
		return;
	if (opt.rate > 0) {
		/* One reading per 1/rate s; a reading that is due while the window is full goes
		 * out as soon as a PUBACK frees a slot (its latency is counted from then). */
		double t = now_mono();
		while (g_publishing && c->st == CS_READY && c->inflight < (unsigned)opt.window &&
		       g_sent < (uint64_t)opt.messages && c->next_due <= t) {
			send_publish(c);
			c->next_due += 1.0 / opt.rate;
		}
		return;
	}
	while (g_publishing && c->st == CS_READY && c->inflight < (unsigned)opt.window &&
	       g_sent < (uint64_t)opt.messages) {
		if (opt.mode == MODE_SUBFLOOD)
			send_subflood(c);
		else
			send_publish(c);
	}
}

/* pub --phases after "end": done once no PUBLISH waits for its PUBACK. */
static void check_drained(void)
{
	for (long i = 0; i < g_next_start; i++)
		if (g_conns[i].st == CS_READY && g_conns[i].inflight)
			return;
	g_stop = true;
}

/* pub --phases: a line on stdin. The first is the go; "end" stops publishing; any other
 * starts the next phase. */
static void phase_line(const char *line)
{
	if (!g_go) {
		g_go = true;
	} else if (!strcmp(line, "end")) {
		if (!g_pub_ended) {
			g_pub_ended = true;
			g_drain_deadline = now_mono() + opt.drain;
			if (g_publishing)
				check_drained();
		}
	} else if (!g_pub_ended && g_phase + 1 < MAX_PHASES) {
		g_phase_t[++g_phase] = now_mono();
	}
}

/* sub: each line on stdin asks how many have arrived so far (a "count" line). */
static void count_lines(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			printf("{\"event\":\"count\",\"received\":%" PRIu64 ",\"dups\":%" PRIu64
			       ",\"t\":%.6f}\n", g_received, g_dups, now_mono());
			fflush(stdout);
		}
	}
}

static void stdin_lines(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			g_line[g_line_len] = '\0';
			phase_line(g_line);
			g_line_len = 0;
		} else if (p[i] != '\r' && g_line_len + 1 < sizeof g_line) {
			g_line[g_line_len++] = p[i];
		}
	}
}

static void json_str(const unsigned char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			printf("\\%c", s[i]);
		else if (s[i] < 0x20 || s[i] >= 0x7f)
			printf("\\u%04x", s[i]);
		else
			putchar(s[i]);
	}
	putchar('"');
}

/* sub --show N: print the first N messages (topic, payload) as JSON event lines. */
static void show_message(const unsigned char *topic, size_t tl, const unsigned char *payload,
			 size_t pl)
{
	printf("{\"event\":\"message\",\"topic\":");
	json_str(topic, tl);
	printf(",\"payload\":");
	json_str(payload, pl > 4096 ? 4096 : pl);
	printf("}\n");
	fflush(stdout);
}

/* storm: c's reading after its CONNACK was acknowledged: it is up. */
static void storm_acked(struct conn *c)
{
	if (c->up)
		return;
	c->up = true;
	c->tries = 0;
	if (++g_up < opt.conns)
		return;
	if (!g_storm_ready) {
		g_storm_ready = true;
		printf("{\"event\":\"ready\",\"connected\":%ld,\"connect_seconds\":%.3f}\n", g_up,
		       now_mono() - g_t0);
	} else if (g_t_drop > 0) {
		g_t_back = now_mono();
		printf("{\"event\":\"back\",\"t_drop\":%.6f,\"t_back\":%.6f,\"resumed\":%ld,"
		       "\"full\":%ld}\n",
		       g_t_drop, g_t_back, g_resumed, g_full);
		g_stop = true;
	}
	fflush(stdout);
}

/* Parse every complete MQTT packet in c->in. */
static void handle_packets(struct conn *c)
{
	struct buf *b = &c->in;
	while (c->st != CS_DEAD && b->len - b->off >= 2) {
		unsigned char *p = b->p + b->off;
		size_t avail = b->len - b->off;
		size_t rl = 0, mult = 1, i = 1;
		for (;;) { /* 2.2.3 */
			if (i >= avail)
				return; /* need more bytes */
			if (i > 4) {
				conn_error(c, "protocol", "bad remaining length");
				conn_fail(c);
				return;
			}
			rl += (size_t)(p[i] & 0x7f) * mult;
			mult *= 128;
			if (!(p[i++] & 0x80))
				break;
		}
		if (rl > MAX_IN) {
			conn_error(c, "protocol", "packet too large");
			conn_fail(c);
			return;
		}
		if (avail < i + rl)
			return;
		unsigned type = p[0] >> 4;
		const unsigned char *body = p + i;
		b->off += i + rl;
		switch (type) {
		case 2: /* CONNACK 3.2 */
			if (c->st != CS_CONNACK || rl != 2) {
				conn_error(c, "protocol", "unexpected CONNACK");
				conn_fail(c);
				return;
			}
			if (body[1] != 0) {
				char rc[32];
				snprintf(rc, sizeof rc, "return code %u", body[1]);
				conn_error(c, "CONNACK refused", rc);
				g_refused++;
				conn_fail(c);
				return;
			}
			if (opt.mode == MODE_SUB) {
				send_subscribe(c);
				c->st = CS_SUBACK;
			} else if (opt.mode == MODE_CONN) {
				conn_finish(c); /* frees c->in: nothing more to parse */
				return;
			} else {
				became_ready(c);
				if (opt.mode == MODE_STORM) {
					if (SSL_session_reused(c->ssl))
						g_resumed += g_t_drop > 0;
					else
						g_full += g_t_drop > 0;
					send_publish(c);
				} else if (g_publishing) {
					top_up(c);
				}
			}
			break;
		case 9: /* SUBACK 3.9 */
			if (opt.mode == MODE_SUBFLOOD && c->st == CS_READY && rl >= 2) {
				for (size_t k = 2; k < rl; k++) {
					if (body[k] == 0x80)
						g_codes_refused++;
					else
						g_codes_granted++;
				}
				if (c->inflight)
					c->inflight--;
				g_acked++;
				g_t_last_ack = now_mono();
				if (g_acked >= (uint64_t)opt.messages)
					g_stop = true;
				else
					top_up(c);
				break;
			}
			if (c->st != CS_SUBACK || rl < 3 || body[2] == 0x80) {
				conn_error(c, "subscribe", "refused");
				g_refused++;
				conn_fail(c);
				return;
			}
			became_ready(c);
			g_subscribed = true;
			printf("{\"event\":\"subscribed\",\"granted_qos\":%u,\"t\":%.6f}\n", body[2],
			       now_mono());
			fflush(stdout);
			break;
		case 4: /* PUBACK 3.4 */
			if (c->inflight)
				c->inflight--;
			g_acked++;
			g_t_last_ack = now_mono();
			if (c->pend && rl >= 2)
				got_puback(c, (uint16_t)((body[0] << 8) | body[1]), g_t_last_ack);
			if (opt.mode == MODE_STORM)
				storm_acked(c);
			else if (opt.mode == MODE_PUB && g_acked >= (uint64_t)opt.messages)
				g_stop = true;
			else if (g_pub_ended)
				check_drained();
			else
				top_up(c);
			break;
		case 3: { /* PUBLISH 3.3 */
			unsigned qos = (p[0] >> 1) & 3;
			if (rl < 2) {
				conn_fail(c);
				return;
			}
			size_t tl = ((size_t)body[0] << 8) | body[1];
			if (qos && rl >= tl + 4) {
				uint16_t id = (uint16_t)((body[2 + tl] << 8) | body[3 + tl]);
				send_ack(c, qos == 1 ? 0x40 : 0x50, id); /* PUBACK / PUBREC */
			}
			if (p[0] & 0x08)
				g_dups++;
			if (g_received < (uint64_t)opt.show && rl >= 2 + tl + (qos ? 2u : 0u))
				show_message(body + 2, tl, body + 2 + tl + (qos ? 2 : 0),
					     rl - 2 - tl - (qos ? 2 : 0));
			double t = now_mono();
			if (!g_received)
				g_t_first_rx = t;
			g_t_last_rx = t;
			g_received++;
			if (opt.messages > 0 && g_received >= (uint64_t)opt.messages)
				g_stop = true;
			break;
		}
		case 6: /* PUBREL 3.6 -> PUBCOMP */
			if (rl >= 2)
				send_ack(c, 0x70, (uint16_t)((body[0] << 8) | body[1]));
			break;
		case 5: /* PUBREC 3.5 (we never publish QoS 2; answer anyway) */
			if (rl >= 2)
				send_ack(c, 0x62, (uint16_t)((body[0] << 8) | body[1]));
			break;
		case 13: /* PINGRESP */
		case 7:  /* PUBCOMP */
		case 11: /* UNSUBACK */
			break;
		default:
			conn_error(c, "protocol", "unexpected packet type");
			conn_fail(c);
			return;
		}
	}
}

static void read_in(struct conn *c)
{
	c->read_wants_out = false;
	for (;;) {
		buf_reserve(&c->in, 16384);
		int r = SSL_read(c->ssl, c->in.p + c->in.len, 16384);
		if (r > 0) {
			c->in.len += (size_t)r;
			handle_packets(c);
			if (c->st == CS_DEAD)
				return;
			continue;
		}
		int err = SSL_get_error(c->ssl, r);
		if (err == SSL_ERROR_WANT_READ)
			return;
		if (err == SSL_ERROR_WANT_WRITE) {
			c->read_wants_out = true;
			return;
		}
		if (err == SSL_ERROR_ZERO_RETURN)
			conn_error(c, "closed by peer", "TLS close_notify");
		else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
			conn_error(c, "closed by peer", errno ? strerror(errno) : "EOF");
		else
			ssl_error(c, "read", err);
		conn_fail(c);
		return;
	}
}

static void tls_progress(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->st = CS_CONNACK;
		send_connect(c);
		flush_out(c);
		if (c->st != CS_DEAD) {
			read_in(c); /* a TLS 1.3 server may have sent data already */
			if (c->st != CS_DEAD)
				flush_out(c);
		}
	} else {
		int err = SSL_get_error(c->ssl, r);
		if (err == SSL_ERROR_WANT_READ) {
			c->want_out = false;
		} else if (err == SSL_ERROR_WANT_WRITE) {
			c->want_out = true;
		} else {
			long v = SSL_get_verify_result(c->ssl);
			if (v != X509_V_OK)
				conn_error(c, "handshake: server certificate",
					   X509_verify_cert_error_string(v));
			else
				ssl_error(c, "handshake", err);
			conn_fail(c);
			return;
		}
	}
	if (c->st != CS_DEAD)
		set_interest(c);
}

static void conn_event(struct conn *c, uint32_t ev)
{
	if (c->st == CS_DEAD || c->st == CS_PENDING)
		return;
	if (c->st == CS_TCP) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_error(c, "connect", strerror(err));
			conn_fail(c);
			return;
		}
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		c->st = CS_TLS;
		tls_progress(c);
		return;
	}
	if (c->st == CS_TLS) {
		tls_progress(c);
		return;
	}
	ERR_clear_error();
	if (c->want_out && (ev & EPOLLOUT))
		flush_out(c);
	/* Read on readability, and also when a read was blocked on writability. */
	if (c->st != CS_DEAD && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP) || c->read_wants_out))
		read_in(c);
	if (c->st != CS_DEAD)
		flush_out(c);
	if (c->st != CS_DEAD)
		set_interest(c);
}

static void begin_publishing(void)
{
	g_publishing = true;
	g_t_first_pub = now_mono();
	g_phase_t[0] = g_t_first_pub;
	for (long i = 0; i < opt.conns; i++) {
		struct conn *c = &g_conns[i];
		if (c->st != CS_READY)
			continue;
		/* --rate: spread the devices' phases over the first period. */
		if (opt.rate > 0)
			c->next_due = g_t_first_pub + (double)i / (double)opt.conns / opt.rate;
		top_up(c);
		flush_out(c);
		if (c->st != CS_DEAD)
			set_interest(c);
	}
}

/* pub --rate: send what is due; returns when the next reading falls due (or t + 1). */
static double rate_tick(double t)
{
	double next = t + 1.0;
	for (long i = 0; i < opt.conns && g_sent < (uint64_t)opt.messages; i++) {
		struct conn *c = &g_conns[i];
		if (c->st != CS_READY)
			continue;
		if (c->next_due <= t && c->inflight < (unsigned)opt.window) {
			top_up(c);
			flush_out(c);
			if (c->st == CS_DEAD)
				continue;
			set_interest(c);
		}
		if (c->inflight < (unsigned)opt.window && c->next_due < next)
			next = c->next_due;
	}
	return next;
}

/* Once a second: connect timeouts and keepalive pings. */
static void housekeeping(double t)
{
	for (long i = 0; i < g_next_start; i++) {
		struct conn *c = &g_conns[i];
		if (c->st == CS_DEAD)
			continue;
		if (c->st != CS_READY) {
			if (t - c->t_start > opt.connect_timeout) {
				conn_error(c, "timeout", "connect/handshake/CONNACK took too long");
				conn_fail(c);
			}
			continue;
		}
		/* 3.1.2.10: send something within the keepalive; PINGREQ at half of it. */
		if (opt.keepalive > 0 && t - c->last_tx >= (double)opt.keepalive / 2) {
			put_packet(c, 0xc0, NULL, 0);
			flush_out(c);
			if (c->st != CS_DEAD)
				set_interest(c);
		}
	}
}

static void disconnect_all(void)
{
	for (long i = 0; i < opt.conns; i++) {
		struct conn *c = &g_conns[i];
		if (c->st == CS_READY) {
			put_packet(c, 0xe0, NULL, 0); /* 3.14 DISCONNECT, best effort */
			flush_out(c);
			if (c->ssl && c->st != CS_DEAD)
				SSL_shutdown(c->ssl);
		}
		conn_close(c);
	}
}

/* pub --go-line, after the result line: keep the connections (without serving them) until
 * stdin reaches EOF, a signal, or 120 s. */
static void hold_until_eof(int sfd)
{
	double end = now_mono() + 120;
	for (;;) {
		double left = end - now_mono();
		if (left <= 0)
			return;
		struct pollfd pf[2] = {{.fd = 0, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		int n = poll(pf, 2, (int)(left * 1000) + 1);
		if (n < 0 && errno != EINTR)
			return;
		if (n <= 0)
			continue;
		if (pf[1].revents)
			return;
		if (pf[0].revents) {
			char tmp[256];
			ssize_t r = read(0, tmp, sizeof tmp);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				return;
		}
	}
}

/* ---- setup --------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: loadgen pub|idle|sub|conn|subflood|storm [options]\n"
	      "  -H, --host ADDR          server address (default 127.0.0.1)\n"
	      "  -p, --port PORT          server port (default 8883)\n"
	      "      --ca FILE            CA that signed the server certificate (required)\n"
	      "      --cert FILE --key FILE   client certificate chain and key (shared)\n"
	      "      --mint-ca-cert FILE --mint-ca-key FILE\n"
	      "                           mint a P-256 client certificate per connection, CN =\n"
	      "                           client id, signed by this CA (each device its own identity)\n"
	      "      --tls 1.2|1.3|any    TLS version (default any = 1.2 or newer)\n"
	      "      --servername NAME    SNI and name to verify (default: verify the host address)\n"
	      "      --no-verify-host     verify the chain only, not the name/address\n"
	      "  -n, --connections N      connections (default 1)\n"
	      "  -m, --messages M         pub: readings to get PUBACKed; sub: arrivals to wait for\n"
	      "                           (0 = no count limit) (default 1000)\n"
	      "  -w, --window W           pub: unacknowledged PUBLISHes per connection (default 10)\n"
	      "      --rate R             pub: R readings/s per connection (default: as fast as the\n"
	      "                           window allows)\n"
	      "      --go-line            pub: print a \"connected\" line when all are up, publish\n"
	      "                           once a line arrives on stdin, hold the connections after\n"
	      "                           the result line until stdin reaches EOF\n"
	      "  -T, --time-limit S       hard time limit in seconds (default 120)\n"
	      "      --prefix P           client id prefix, id = P + 5-digit index (default bench-)\n"
	      "      --keepalive S        MQTT keepalive (default 60; PINGREQ sent at half)\n"
	      "      --topic T            pub topic (default iot-2/evt/status/fmt/json)\n"
	      "      --filter F --qos Q   sub: filter and requested QoS (default # and 1)\n"
	      "      --max-handshakes H   connections in progress at once (default 64)\n"
	      "      --max-conns C        fd budget cap on N (default 5000)\n"
	      "      --connect-timeout S  per connection, TCP to CONNACK (default 30)\n"
	      "      --idle-exit S        sub: stop S seconds after the last arrival (default off)\n"
	      "      --show N             sub: print the first N messages as JSON lines\n"
	      "      --phases             pub --go-line: each line after the go starts the next\n"
	      "                           phase (at most 8), \"end\" stops publishing; latency\n"
	      "                           per phase in the result\n"
	      "      --drain S            pub --phases: wait at most S s for the PUBACKs after\n"
	      "                           \"end\" (default 30)\n"
	      "      --filters F          subflood: topic filters per SUBSCRIBE (default 256)\n"
	      "      --bind ADDR          connect from this local address (e.g. 127.0.0.2)\n"
	      "      --resume             storm: reconnect offering the last TLS session\n",
	      f);
}

static void parse_args(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		exit(2);
	}
	if (!strcmp(argv[1], "pub"))
		opt.mode = MODE_PUB;
	else if (!strcmp(argv[1], "idle"))
		opt.mode = MODE_IDLE;
	else if (!strcmp(argv[1], "sub"))
		opt.mode = MODE_SUB;
	else if (!strcmp(argv[1], "conn"))
		opt.mode = MODE_CONN;
	else if (!strcmp(argv[1], "subflood"))
		opt.mode = MODE_SUBFLOOD;
	else if (!strcmp(argv[1], "storm"))
		opt.mode = MODE_STORM;
	else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		exit(0);
	} else {
		usage(stderr);
		exit(2);
	}
	enum { O_CA = 256, O_CERT, O_KEY, O_MCA, O_MKEY, O_TLS, O_SNI, O_NOVH, O_PREFIX, O_KA,
	       O_TOPIC, O_FILTER, O_QOS, O_MAXHS, O_MAXC, O_CTO, O_IDLE, O_SHOW, O_RATE, O_GO,
	       O_PHASES, O_DRAIN, O_FILTERS, O_BIND, O_RESUME };
	static const struct option lo[] = {
		{"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
		{"ca", required_argument, NULL, O_CA}, {"cert", required_argument, NULL, O_CERT},
		{"key", required_argument, NULL, O_KEY},
		{"mint-ca-cert", required_argument, NULL, O_MCA},
		{"mint-ca-key", required_argument, NULL, O_MKEY},
		{"tls", required_argument, NULL, O_TLS},
		{"servername", required_argument, NULL, O_SNI},
		{"no-verify-host", no_argument, NULL, O_NOVH},
		{"connections", required_argument, NULL, 'n'},
		{"messages", required_argument, NULL, 'm'}, {"window", required_argument, NULL, 'w'},
		{"time-limit", required_argument, NULL, 'T'},
		{"prefix", required_argument, NULL, O_PREFIX},
		{"keepalive", required_argument, NULL, O_KA},
		{"topic", required_argument, NULL, O_TOPIC},
		{"filter", required_argument, NULL, O_FILTER}, {"qos", required_argument, NULL, O_QOS},
		{"max-handshakes", required_argument, NULL, O_MAXHS},
		{"max-conns", required_argument, NULL, O_MAXC},
		{"connect-timeout", required_argument, NULL, O_CTO},
		{"idle-exit", required_argument, NULL, O_IDLE},
		{"show", required_argument, NULL, O_SHOW},
		{"rate", required_argument, NULL, O_RATE},
		{"go-line", no_argument, NULL, O_GO},
		{"phases", no_argument, NULL, O_PHASES},
		{"drain", required_argument, NULL, O_DRAIN},
		{"filters", required_argument, NULL, O_FILTERS},
		{"bind", required_argument, NULL, O_BIND}, {"resume", no_argument, NULL, O_RESUME},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	optind = 2;
	int ch;
	while ((ch = getopt_long(argc, argv, "H:p:n:m:w:T:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = optarg; break;
		case O_CA: opt.ca = optarg; break;
		case O_CERT: opt.cert = optarg; break;
		case O_KEY: opt.key = optarg; break;
		case O_MCA: opt.mint_ca_cert = optarg; break;
		case O_MKEY: opt.mint_ca_key = optarg; break;
		case O_TLS:
			if (!strcmp(optarg, "1.2"))
				opt.tls = 12;
			else if (!strcmp(optarg, "1.3"))
				opt.tls = 13;
			else if (!strcmp(optarg, "any"))
				opt.tls = 0;
			else
				die("--tls: 1.2, 1.3 or any");
			break;
		case O_SNI: opt.servername = optarg; break;
		case O_NOVH: opt.verify_host = false; break;
		case 'n': opt.conns = parse_long("--connections", optarg, 1, 1000000); break;
		case 'm': opt.messages = parse_long("--messages", optarg, 0, LONG_MAX); break;
		case 'w': opt.window = parse_long("--window", optarg, 1, 65000); break;
		case 'T': opt.time_limit = parse_double("--time-limit", optarg, 0.1, 86400); break;
		case O_PREFIX: opt.prefix = optarg; break;
		case O_KA: opt.keepalive = parse_long("--keepalive", optarg, 0, 65535); break;
		case O_TOPIC: opt.topic = optarg; break;
		case O_FILTER: opt.filter = optarg; break;
		case O_QOS: opt.qos = parse_long("--qos", optarg, 0, 2); break;
		case O_MAXHS: opt.max_handshakes = parse_long("--max-handshakes", optarg, 1, 100000);
			break;
		case O_MAXC: opt.max_conns = parse_long("--max-conns", optarg, 1, 1000000); break;
		case O_CTO: opt.connect_timeout = parse_double("--connect-timeout", optarg, 0.1, 3600);
			break;
		case O_IDLE: opt.idle_exit = parse_double("--idle-exit", optarg, 0, 86400); break;
		case O_SHOW: opt.show = parse_long("--show", optarg, 0, 1000); break;
		case O_RATE: opt.rate = parse_double("--rate", optarg, 0.001, 1e6); break;
		case O_GO: opt.go_line = true; break;
		case O_PHASES: opt.phases = true; break;
		case O_DRAIN: opt.drain = parse_double("--drain", optarg, 0.1, 3600); break;
		case O_FILTERS: opt.filters = parse_long("--filters", optarg, 1, 10000); break;
		case O_BIND: opt.bind = optarg; break;
		case O_RESUME: opt.resume = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!opt.ca)
		die("--ca is required (the server certificate is always verified)");
	if (!!opt.cert != !!opt.key)
		die("--cert and --key go together");
	if (!!opt.mint_ca_cert != !!opt.mint_ca_key)
		die("--mint-ca-cert and --mint-ca-key go together");
	if (opt.cert && opt.mint_ca_cert)
		die("--cert/--key and --mint-ca-* are exclusive");
	if (strlen(opt.prefix) > 100 || strlen(opt.topic) > 1000 || strlen(opt.filter) > 1000)
		die("prefix/topic/filter too long");
	if (opt.mode == MODE_SUB)
		opt.conns = 1;
	if ((opt.rate > 0 || opt.go_line) && opt.mode != MODE_PUB)
		die("--rate and --go-line are for pub");
	if (opt.phases && !opt.go_line)
		die("--phases needs --go-line");
	/* conn closes each connection at its CONNACK: only those in progress hold an fd. */
	long fds = opt.mode == MODE_CONN && opt.max_handshakes < opt.conns ? opt.max_handshakes
									 : opt.conns;
	if (fds > opt.max_conns)
		die("%ld connections exceed --max-conns %ld (fd budget)", fds, opt.max_conns);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)fds + 32 > rl.rlim_cur)
		die("%ld connections do not fit the open-file limit %llu", fds,
		    (unsigned long long)rl.rlim_cur);
	/* pub: a pending-PUBACK table per connection, twice the window, a power of two. */
	unsigned cap = 16;
	while (cap < 2 * (unsigned long)opt.window && cap < 65536)
		cap *= 2;
	g_pend_mask = cap - 1;
}

static void setup_tls(void)
{
	g_ctx = SSL_CTX_new(TLS_client_method());
	if (!g_ctx)
		die("SSL_CTX_new");
	int minv = opt.tls == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
	int maxv = opt.tls == 12 ? TLS1_2_VERSION : 0;
	if (!SSL_CTX_set_min_proto_version(g_ctx, minv) ||
	    !SSL_CTX_set_max_proto_version(g_ctx, maxv))
		die("cannot set TLS versions");
	if (SSL_CTX_load_verify_locations(g_ctx, opt.ca, NULL) != 1)
		die("cannot load CA %s", opt.ca);
	SSL_CTX_set_verify(g_ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
	long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
	if (opt.mode == MODE_IDLE) /* thousands of idle sessions: keep our own footprint small */
		mode |= SSL_MODE_RELEASE_BUFFERS;
	SSL_CTX_set_mode(g_ctx, mode);
	if (opt.cert) {
		if (SSL_CTX_use_certificate_chain_file(g_ctx, opt.cert) != 1)
			die("cannot load certificate %s", opt.cert);
		if (SSL_CTX_use_PrivateKey_file(g_ctx, opt.key, SSL_FILETYPE_PEM) != 1)
			die("cannot load key %s", opt.key);
		if (SSL_CTX_check_private_key(g_ctx) != 1)
			die("key %s does not match certificate %s", opt.key, opt.cert);
	}
	if (opt.mint_ca_cert) {
		FILE *f = fopen(opt.mint_ca_cert, "r");
		if (!f || !(g_mint_ca = PEM_read_X509(f, NULL, NULL, NULL)))
			die("cannot read CA certificate %s", opt.mint_ca_cert);
		fclose(f);
		f = fopen(opt.mint_ca_key, "r");
		if (!f || !(g_mint_key = PEM_read_PrivateKey(f, NULL, NULL, NULL)))
			die("cannot read CA key %s", opt.mint_ca_key);
		fclose(f);
		if (X509_check_private_key(g_mint_ca, g_mint_key) != 1)
			die("CA key %s does not match %s", opt.mint_ca_key, opt.mint_ca_cert);
	}
}

static void print_result(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu_user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	double cpu_sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	double t_end = now_mono();
	const char *mode = opt.mode == MODE_PUB ? "pub" : opt.mode == MODE_IDLE ? "idle"
			 : opt.mode == MODE_SUB ? "sub" : opt.mode == MODE_CONN ? "conn"
			 : opt.mode == MODE_STORM ? "storm" : "subflood";
	printf("{\"mode\":\"%s\",\"connections\":%ld,\"connected\":%ld,\"failed\":%ld,"
	       "\"refused\":%ld,\"dropped\":%ld,\"timed_out\":%s,\"wall_seconds\":%.3f,"
	       "\"connect_seconds\":%.3f,\"cpu_user\":%.3f,\"cpu_sys\":%.3f,\"mint_cpu\":%.3f,"
	       "\"max_rss_kib\":%ld",
	       mode, opt.conns, g_connected, g_failed, g_refused, g_closed_after_up,
	       g_timed_out ? "true" : "false", t_end - g_t0,
	       g_t_all_connected > 0 ? g_t_all_connected - g_t0 : -1.0, cpu_user, cpu_sys, g_mint_cpu,
	       ru.ru_maxrss);
	if (opt.mode == MODE_PUB) {
		double secs = g_acked && g_t_last_ack > g_t_first_pub ? g_t_last_ack - g_t_first_pub
								       : 0.0;
		printf(",\"window\":%ld,\"messages\":%ld,\"sent\":%" PRIu64 ",\"acked\":%" PRIu64
		       ",\"seconds\":%.6f,\"rate\":%.1f,\"t_first_publish\":%.6f,"
		       "\"t_last_ack\":%.6f,\"rate_per_conn\":%g", opt.window, opt.messages, g_sent,
		       g_acked, secs, secs > 0 ? (double)g_acked / secs : 0.0, g_t_first_pub,
		       g_t_last_ack, opt.rate);
		hist_print(&g_lat, "lat");
		printf(",\"lat_lost\":%" PRIu64 ",\"lat_unmatched\":%" PRIu64, g_lat_lost,
		       g_lat_unmatched);
		if (opt.phases) {
			printf(",\"drain_timed_out\":%s,\"phases\":[",
			       g_drain_timed_out ? "true" : "false");
			for (unsigned i = 0; i <= g_phase; i++) {
				printf("%s{\"t_start\":%.6f,\"sent\":%" PRIu64 ",\"acked\":%" PRIu64,
				       i ? "," : "", g_phase_t[i], g_phase_sent[i], g_phase_acked[i]);
				hist_print(&g_phase_lat[i], "lat");
				putchar('}');
			}
			putchar(']');
		}
	} else if (opt.mode == MODE_SUB) {
		double secs = g_received > 1 ? g_t_last_rx - g_t_first_rx : 0.0;
		printf(",\"subscribed\":%s,\"received\":%" PRIu64 ",\"dups\":%" PRIu64
		       ",\"seconds\":%.6f,\"rate\":%.1f,\"t_first\":%.6f,\"t_last\":%.6f",
		       g_subscribed ? "true" : "false", g_received, g_dups, secs,
		       secs > 0 ? (double)g_received / secs : 0.0, g_t_first_rx, g_t_last_rx);
	} else if (opt.mode == MODE_SUBFLOOD) {
		double secs = g_acked && g_t_last_ack > g_t_first_pub ? g_t_last_ack - g_t_first_pub
								       : 0.0;
		printf(",\"window\":%ld,\"filters\":%ld,\"sent\":%" PRIu64 ",\"acked\":%" PRIu64
		       ",\"seconds\":%.6f,\"rate\":%.1f,\"codes_granted\":%" PRIu64
		       ",\"codes_refused\":%" PRIu64, opt.window, opt.filters, g_sent, g_acked, secs,
		       secs > 0 ? (double)g_acked / secs : 0.0, g_codes_granted, g_codes_refused);
	} else if (opt.mode == MODE_CONN) {
		double secs = g_t_all_connected > 0 ? g_t_all_connected - g_t0 : t_end - g_t0;
		printf(",\"max_handshakes\":%ld,\"handshakes\":%ld,\"handshakes_per_s\":%.1f",
		       opt.max_handshakes, g_handshakes, secs > 0 ? (double)g_handshakes / secs : 0.0);
		hist_print(&g_lat, "connack");
	}
	printf("}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	setup_tls();

	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	int gai = getaddrinfo(opt.host, opt.port, &hints, &g_addr);
	if (gai)
		die("%s:%s: %s", opt.host, opt.port, gai_strerror(gai));
	if (opt.bind) {
		struct addrinfo bh = {.ai_socktype = SOCK_STREAM, .ai_family = g_addr->ai_family,
				      .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
		gai = getaddrinfo(opt.bind, NULL, &bh, &g_bind);
		if (gai)
			die("--bind %s: %s", opt.bind, gai_strerror(gai));
	}
	if (opt.mode == MODE_SUBFLOOD)
		build_subflood();

	g_ep = epoll_create1(EPOLL_CLOEXEC);
	if (g_ep < 0)
		die("epoll_create1: %s", strerror(errno));
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = EV_SIGNAL};
	if (sfd < 0 || epoll_ctl(g_ep, EPOLL_CTL_ADD, sfd, &e) < 0)
		die("signalfd: %s", strerror(errno));
	if (opt.mode == MODE_IDLE || opt.mode == MODE_SUB || opt.mode == MODE_STORM ||
	    opt.go_line) {
		/* EOF on stdin ends idle/sub runs (and pub --go-line ones); stdin that epoll refuses (/dev/null, a regular
		 * file) is simply not watched. */
		e.data.u64 = EV_STDIN;
		if (epoll_ctl(g_ep, EPOLL_CTL_ADD, 0, &e) < 0 && errno != EPERM)
			fprintf(stderr, "loadgen: not watching stdin: %s\n", strerror(errno));
	}

	g_conns = calloc((size_t)opt.conns, sizeof *g_conns);
	if (!g_conns)
		die("out of memory");
	for (long i = 0; i < opt.conns; i++) {
		g_conns[i].fd = -1;
		g_conns[i].idx = (int)i;
	}
	if (opt.mode == MODE_STORM && !(g_retry = calloc((size_t)opt.conns, sizeof *g_retry)))
		die("out of memory");
	srand((unsigned)getpid());
	if (g_mint_ca)
		mint_all(); /* before the clock starts */

	g_t0 = now_mono();
	double deadline = g_t0 + opt.time_limit, last_hk = g_t0;
	struct epoll_event evs[256];
	start_more();
	while (!g_stop) {
		double t = now_mono();
		if (t >= deadline) {
			g_timed_out = true;
			break;
		}
		if (opt.mode == MODE_SUB && opt.idle_exit > 0 && g_received &&
		    t - g_t_last_rx >= opt.idle_exit)
			break;
		if (g_pub_ended && t >= g_drain_deadline) {
			g_drain_timed_out = true;
			break;
		}
		if ((opt.mode == MODE_PUB || opt.mode == MODE_SUBFLOOD) && !g_publishing &&
		    g_t_all_connected > 0) {
			if (!g_connected)
				break;
			if (!opt.go_line || g_go) {
				begin_publishing();
			} else if (!g_said_connected) {
				printf("{\"event\":\"connected\",\"connected\":%ld,\"failed\":%ld,"
				       "\"connect_seconds\":%.3f}\n", g_connected, g_failed,
				       g_t_all_connected - g_t0);
				fflush(stdout);
				g_said_connected = true;
			}
		}
		if (g_connected + g_in_progress + g_retry_len == 0 && g_next_start >= opt.conns)
			break; /* nothing left alive */
		if (t - last_hk >= 1.0) {
			housekeeping(t);
			last_hk = t;
		}
		double wait = deadline - t;
		if (wait > 0.2)
			wait = 0.2;
		if (g_publishing && !g_pub_ended && opt.rate > 0) {
			double due = rate_tick(t) - now_mono();
			if (due < wait)
				wait = due > 0 ? due : 0;
		}
		if (opt.mode == MODE_STORM) {
			double due = storm_retry(t);
			if (due < wait)
				wait = due;
		}
		/* Round up to whole milliseconds: waking early would only spin. */
		int n = epoll_wait(g_ep, evs, (int)(sizeof evs / sizeof evs[0]),
				   (int)(wait * 1000 + 0.999));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n && !g_stop; i++) {
			uint64_t id = evs[i].data.u64;
			if (id == EV_SIGNAL) {
				g_stop = true;
			} else if (id == EV_STDIN) {
				char tmp[256];
				ssize_t r = read(0, tmp, sizeof tmp);
				if (r > 0 && opt.phases)
					stdin_lines(tmp, (size_t)r);
				else if (r > 0 && opt.mode == MODE_SUB)
					count_lines(tmp, (size_t)r);
				else if (r > 0)
					g_go = true; /* pub --go-line: any input is the go */
				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
					g_stop = true;
				if (r == 0) {
					epoll_ctl(g_ep, EPOLL_CTL_DEL, 0, NULL);
					g_stdin_eof = true;
				}
			} else {
				conn_event(&g_conns[id], evs[i].events);
			}
		}
		start_more();
	}
	print_result();
	if (opt.go_line && !g_stdin_eof && !g_timed_out)
		hold_until_eof(sfd);
	disconnect_all();
	for (long i = 0; i < opt.conns; i++)
		SSL_SESSION_free(g_conns[i].sess);
	free(g_retry);
	free(g_conns);
	freeaddrinfo(g_addr);
	if (g_bind)
		freeaddrinfo(g_bind);
	free(g_subflood);
	SSL_CTX_free(g_ctx);
	X509_free(g_mint_ca);
	EVP_PKEY_free(g_mint_key);
	close(sfd);
	close(g_ep);
	/* Exit status: 0 when the goal was met, 1 when the run ended short (timeouts, failures). */
	if (opt.mode == MODE_PUB && opt.phases)
		return g_acked >= g_sent && !g_failed && !g_drain_timed_out ? 0 : 1;
	if (opt.mode == MODE_PUB)
		return g_acked >= (uint64_t)opt.messages && !g_failed ? 0 : 1;
	if (opt.mode == MODE_SUBFLOOD)
		return g_failed ? 1 : 0;
	if (opt.mode == MODE_IDLE)
		return g_failed || g_closed_after_up ? 1 : 0;
	if (opt.mode == MODE_CONN)
		return g_handshakes == opt.conns ? 0 : 1;
	if (opt.mode == MODE_STORM)
		return g_t_back > 0 ? 0 : 1;
	return g_subscribed && (opt.messages == 0 || g_received >= (uint64_t)opt.messages) ? 0 : 1;
}
