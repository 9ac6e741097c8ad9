/* fuzz_session: the device session state machine, end to end in one
 * process. The codec targets (fuzz_mqtt) reach the parsers only; the
 * bug of a session that stopped being read after 2048 pipelined
 * PUBLISHes lived in the state around them (holds, pauses, acks released
 * by the commit) and no codec target could find it. Here every input is
 * the byte stream one device sends: a real gateway (a plaintext listener
 * on loopback, the spool in a temporary directory with durability = os,
 * the downlink on, an upstream that refuses connections) accepts a real
 * TCP connection, reads the input, answers, commits, and tears the
 * session down when the connection is reset. ASan and UBSan judge; the
 * target also checks that the gateway still serves an honest device
 * afterwards every few hundred inputs (a wedge is a finding too).
 *
 * Build and run: make fuzz FUZZ_TARGETS=fuzz_session (links every daemon
 * module but main.c). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/gateway_int.h"
#include "iotgw/gateway.h"

static struct gateway *gw;
static int port;
static struct ev_timer stop_timer;
static unsigned long inputs;

static void on_stop(struct ev_loop *loop, struct ev_timer *t)
{
	(void)t;
	ev_stop(loop);
}

/* n turns of the gateway's loop (each ends with its commit hook). */
static void turn(int n)
{
	for (int i = 0; i < n; i++) {
		ev_timer_start(gw->loop, &stop_timer, 0);
		if (ev_run(gw->loop) != 0)
			abort();
	}
}

static void drain(int fd)
{
	char buf[65536];
	while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
}

static int connect_gw(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		abort();
	return fd;
}

/* A reset, not a FIN: no TIME_WAIT left behind per input. */
static void reset_close(int fd)
{
	struct linger lg = {1, 0};
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* An honest device: CONNECT, one QoS 1 PUBLISH, its PUBACK must come. */
static void check_alive(void)
{
	static const uint8_t honest[] = {
		0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x07,
		'h', 'o', 'n', 'e', 's', 't', '1', 0x32, 0x0d, 0x00, 0x05, 'e', 's', 'p', '/',
		't', 0x00, 0x01, '2', '1', '.', '5'};
	int fd = connect_gw();
	if (send(fd, honest, sizeof honest, 0) != (ssize_t)sizeof honest)
		abort();
	uint8_t got[8];
	size_t n = 0;
	for (int i = 0; i < 200 && n < sizeof got; i++) {
		turn(1);
		ssize_t r = recv(fd, got + n, sizeof got - n, MSG_DONTWAIT);
		if (r > 0)
			n += (size_t)r;
	}
	/* CONNACK 0 then PUBACK 1; only the CONNACK while the spool is full
	 * (the upstream never answers here): devices are held, not refused. */
	static const uint8_t want[] = {0x20, 0x02, 0x00, 0x00, 0x40, 0x02, 0x00, 0x01};
	size_t expect = ingest_holding(gw->ingest) ? 4 : sizeof want;
	if (n != expect || memcmp(got, want, n) != 0) {
		fprintf(stderr,
			"fuzz_session: the gateway no longer serves an honest device (%zu bytes "
			"back; spool %llu queued, full %d, write failed %d, sessions %zu)\n",
			n, (unsigned long long)spool_count(gw->spool), ingest_holding(gw->ingest),
			ingest_write_failed(gw->ingest), gateway_sessions(gw));
		abort();
	}
	reset_close(fd);
	turn(2);
}

/* A port nobody listens on now (bind = 127.0.0.1:0 is not a valid key). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) != 0)
		abort();
	close(fd);
	return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char dir[] = "/tmp/iotgw-fuzz-session.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char conf[512], text[2048];
	snprintf(conf, sizeof conf, "%s/iotgw.conf", dir);
	snprintf(text, sizeof text,
		 "[gateway]\nname = fuzz\nlog_level = err\nmax_packet_size = 64K\nthreads = 1\n"
		 "[listener plain]\nbind = 127.0.0.1:%d\ntls = off\npublish_acl = none\n"
		 "max_message_rate = 0\nmax_connection_rate_per_address = 0\n"
		 "[upstream]\nhost = 127.0.0.1\nport = 9\ntls = off\nreconnect_min = 10s\n"
		 "presence_topic = none\n"
		 "[spool]\ndir = %s\ndurability = os\nmax_messages = 1000000\n"
		 "[downlink]\ntopic = commands/{device}/{command}\n",
		 free_port(), dir);
	FILE *f = fopen(conf, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
	int status = 0;
	gw = gateway_new(conf, &status);
	if (!gw || !gw->listeners || gw->listeners->nsocks < 1)
		abort();
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	if (getsockname(gw->listeners->socks[0].fd, (struct sockaddr *)&a, &al) != 0)
		abort();
	port = ntohs(a.sin_port);
	ev_timer_init(&stop_timer, on_stop, NULL);
	turn(2);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = connect_gw();
	size_t off = 0;
	/* The bytes in a few writes, with loop turns in between: packets split
	 * across reads and commits between packets are states too. */
	while (off < size) {
		size_t n = size - off > 1024 ? 1024 : size - off;
		ssize_t w = send(fd, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the gateway closed (a protocol error): fine */
		off += (size_t)w;
		turn(2);
		drain(fd);
	}
	turn(3);
	drain(fd);
	reset_close(fd);
	turn(3);
	if (++inputs % 512 == 0)
		check_alive();
	return 0;
}
