/* upstream: the connection to the broker and its state machine (IDLE,
 * RESOLVING on the connect thread, CONNECTING until the CONNACK,
 * CONNECTED; set_state is the one place it changes), sending the spool
 * within the window, libmosquitto's callbacks, reconnecting with backoff
 * after a drop or a settings change, and the presence messages. Why a
 * connection failed, and the write buffer under TLS, are in upstream_tls.c;
 * upstream_int.h is what the two share. */
#include "iotgw/upstream.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/ssl.h>

#include "iotgw/log.h"
#include "upstream_int.h"

/* What status and metrics call each state, and what the debug log does. */
static const char *const up_state_names[] = {"down", "connecting", "connecting", "connected"};
static const char *const up_state_debug[] = {"idle", "resolving", "connecting", "connected"};

/* The legal moves: from (row) to (column). Everything ends in IDLE. */
static const bool up_legal[4][4] = {
	[UP_IDLE] = {[UP_RESOLVING] = true},
	[UP_RESOLVING] = {[UP_CONNECTING] = true, [UP_IDLE] = true},
	[UP_CONNECTING] = {[UP_CONNECTED] = true, [UP_IDLE] = true},
	[UP_CONNECTED] = {[UP_IDLE] = true},
};

static const char *const drop_names[UP_DROP__COUNT] = {
	[UP_DROP_NETWORK] = "network",
	[UP_DROP_TLS] = "tls",
	[UP_DROP_CERT_REFUSED] = "certificate_refused",
	[UP_DROP_CONNACK_REFUSED] = "connack_refused",
	[UP_DROP_TIMEOUT] = "timeout",
	[UP_DROP_CLOSED] = "closed",
	[UP_DROP_RECONFIGURED] = "reconfigured",
};

const char *upstream_drop_name(enum up_drop_class c)
{
	return c < UP_DROP__COUNT ? drop_names[c] : "";
}

static void up_connect(struct upstream *up);
static void presence_free(struct upstream *up);
static struct log_fields up_fields(const struct upstream *up);

/* The one place the state changes. */
static void set_state(struct upstream *up, enum up_state next)
{
	assert(up_legal[up->state][next]);
	if (log_enabled(LOG_DEBUG)) {
		struct log_fields f = up_fields(up);
		log_event(LOG_DEBUG, EV_UPSTREAM_LIBRARY, &f, "upstream state %s -> %s",
			  up_state_debug[up->state], up_state_debug[next]);
	}
	up->state = next;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void settings_free(struct up_settings *s)
{
	free(s->host);
	free(s->client_id);
	free(s->ca);
	free(s->cert);
	free(s->key);
	free(s->username);
	free(s->password);
	memset(s, 0, sizeof *s);
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

static int settings_copy(struct up_settings *dst, const struct cfg_upstream *c)
{
	bool oom = false;
	struct up_settings s = {
		.host = dup_or_null(c->host, &oom),
		.client_id = dup_or_null(c->client_id, &oom),
		.ca = dup_or_null(c->ca.path, &oom),
		.cert = dup_or_null(c->cert.path, &oom),
		.key = dup_or_null(c->key.path, &oom),
		.username = dup_or_null(c->username, &oom),
		.password = dup_or_null(c->password, &oom),
		.port = c->port,
		.tls = c->tls,
		.keepalive_s = c->keepalive_s,
		.inflight = c->inflight,
		.reconnect_min_ms = c->reconnect_min_ms,
		.reconnect_max_ms = c->reconnect_max_ms,
		.host_line = c->host_line,
		.cert_line = c->cert.line,
	};
	if (oom) {
		settings_free(&s);
		return -1;
	}
	*dst = s;
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Do two settings need different connections? (Window and backoff do not.) */
static bool connection_differs(const struct up_settings *a, const struct up_settings *b)
{
	return !str_eq(a->host, b->host) || a->port != b->port ||
	       !str_eq(a->client_id, b->client_id) || a->tls != b->tls ||
	       !str_eq(a->ca, b->ca) || !str_eq(a->cert, b->cert) || !str_eq(a->key, b->key) ||
	       !str_eq(a->username, b->username) || !str_eq(a->password, b->password) ||
	       a->keepalive_s != b->keepalive_s;
}

static struct log_fields up_fields(const struct upstream *up)
{
	return (struct log_fields){.peer = up->set.host};
}

static bool held(const struct upstream *up)
{
	return up->hold && up->hold(up->dl_arg);
}

static void update_interest(struct upstream *up)
{
	if (up->io.fd < 0 || !up->mosq)
		return;
	/* While a command's PUBACK waits for the disk, read no more: the
	 * broker's window for us then holds further commands back. */
	uint32_t ev = held(up) ? 0 : EPOLLIN;
	/* Records waiting in wbuf need no EPOLLOUT: upstream_flush writes them
	 * at the end of the iteration; only what the socket refused then does. */
	if (mosquitto_want_write(up->mosq) || up->flush_blocked)
		ev |= EPOLLOUT;
	(void)ev_io_set(up->loop, &up->io, ev);
}

static void destroy_handle(void *p)
{
	mosquitto_destroy(p);
}

/* Ends the current connection (whatever its stage) and schedules the next
 * attempt. In-flight entries go back to the spool and will be re-sent. */
static void up_drop(struct upstream *up, enum up_drop_class cls, const char *reason)
{
	if (up->state == UP_IDLE || up->thread_running)
		return;
	char explained[512];
	reason = up_explain(up, reason, &cls, explained, sizeof explained);
	up->m.disconnects[cls]++;
	snprintf(up->m.why, sizeof up->m.why, "%s", reason);
	if (up->state == UP_CONNECTED)
		up->m.down_since_ms = ev_now_ms(up->loop);
	up->lib_error[0] = '\0';
	up->awaiting_connack = false;
	up->m.downlink_subscribed = false;
	bool was_connected = up->state == UP_CONNECTED;
	ev_io_stop(up->loop, &up->io);
	ev_timer_stop(up->loop, &up->misc_timer);
	ev_timer_stop(up->loop, &up->connack_timer);
	spool_requeue_inflight(up->spool);
	/* Never destroy a handle from inside one of its own callbacks. */
	ev_defer(up->loop, destroy_handle, up->mosq);
	up->mosq = NULL;
	up->plain = NULL;
	up->wbuf = NULL;
	up->flush_blocked = false;
	set_state(up, UP_IDLE);
	struct log_fields f = up_fields(up);
	if (was_connected)
		log_event(LOG_WARNING, EV_UPSTREAM_DOWN, &f, "upstream %s:%u lost: %s (%llu queued)",
			  up->set.host, up->set.port, reason,
			  (unsigned long long)spool_count(up->spool));
	else
		log_event(LOG_WARNING, EV_UPSTREAM_CONNECT_FAILED, &f,
			  "cannot connect to upstream %s:%u: %s", up->set.host, up->set.port,
			  reason);
	if (up->stopping)
		return;
	if (up->reconnect_wanted) {
		up->reconnect_wanted = false;
		up->attempts = 0;
	}
	/* Exponential backoff with +-20% jitter so a fleet of gateways does not
	 * reconnect in lock-step after a broker restart. */
	uint64_t delay = up->set.reconnect_min_ms;
	for (unsigned i = 0; i < up->attempts && delay < up->set.reconnect_max_ms; i++)
		delay *= 2;
	if (delay > up->set.reconnect_max_ms)
		delay = up->set.reconnect_max_ms;
	uint64_t jitter = delay / 5;
	if (jitter)
		delay = delay - jitter + (uint64_t)random() % (2 * jitter + 1);
	up->attempts++;
	ev_timer_start(up->loop, &up->retry_timer, delay);
}

/* Errors about the message itself, which no reconnect can cure. Only these
 * may cost an entry; every other error keeps it (losing an acknowledged
 * reading because a socket died mid-publish would break the promise). */
static bool entry_is_unsendable(int rc)
{
	return rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_OVERSIZE_PACKET ||
	       rc == MOSQ_ERR_MALFORMED_UTF8;
}

static void pump(struct upstream *up)
{
	/* Nothing new while a command's PUBACK is held: the flush that would
	 * send it waits for the disk (upstream_flush). */
	while (up->state == UP_CONNECTED && !held(up) &&
	       spool_inflight(up->spool) < up->set.inflight) {
		struct spool_entry *e = spool_next_unsent(up->spool);
		if (!e)
			break;
		int mid = 0;
		int rc = mosquitto_publish(up->mosq, &mid, e->topic, (int)e->len, e->payload, 1,
					   false);
		if (rc == MOSQ_ERR_SUCCESS) {
			if (e->sends)
				up->m.resent++;
			spool_mark_inflight(up->spool, e, mid, ev_now_us(up->loop));
			continue;
		}
		if (!entry_is_unsendable(rc)) {
			/* Anything else is about the connection (it may be going
			 * down: libmosquitto then says "protocol error" or an
			 * errno), not the entry: keep it and reconnect. */
			up_drop(up, UP_DROP_NETWORK, mosquitto_strerror(rc));
			return;
		}
		/* The broker can never take this entry (e.g. too large); keeping
		 * it would block every later reading behind it. */
		struct log_fields f = up_fields(up);
		log_event(LOG_ERR, EV_UPSTREAM_REJECTED, &f, "dropping entry for %s: %s", e->topic,
			  mosquitto_strerror(rc));
		up->m.dropped++;
		spool_mark_inflight(up->spool, e, -1, 0);
		(void)spool_ack(up->spool, -1, NULL);
	}
	update_interest(up);
}

static void after_io(struct upstream *up, int rc)
{
	char why[256];
	if (rc != MOSQ_ERR_SUCCESS && up->state != UP_IDLE)
		up_drop(up, UP_DROP_NETWORK, up_failure_reason(rc, errno, why, sizeof why));
	if (up->state == UP_CONNECTED)
		pump(up);
	else
		update_interest(up);
	if (up->acked_since_kick) {
		up->acked_since_kick = false;
		up->on_progress(up->arg);
	}
}

static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	struct upstream *up = io->arg;
	int rc = MOSQ_ERR_SUCCESS;
	if ((events & EPOLLOUT) && up->flush_blocked) {
		up->flush_blocked = false;
		upstream_flush(up);
		if (!up->mosq)
			return; /* the flush failed and dropped the connection */
	}
	if (rc == MOSQ_ERR_SUCCESS && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		/* With read-ahead, records OpenSSL has read but not yet decrypted
		 * are invisible to epoll and to libmosquitto's own check
		 * (SSL_pending): read until none is left. */
		SSL *ssl;
		do
			rc = mosquitto_loop_read(up->mosq, 1);
		while (rc == MOSQ_ERR_SUCCESS && up->mosq && !held(up) &&
		       (ssl = mosquitto_ssl_get(up->mosq)) && SSL_has_pending(ssl));
	}
	if (rc == MOSQ_ERR_SUCCESS && up->mosq && (events & EPOLLOUT))
		rc = mosquitto_loop_write(up->mosq, 1);
	after_io(up, rc);
}

static void on_misc_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct upstream *up = t->arg;
	int rc = mosquitto_loop_misc(up->mosq);
	after_io(up, rc);
	if (up->state == UP_CONNECTED || up->state == UP_CONNECTING)
		ev_timer_start(loop, &up->misc_timer, 1000);
}

static void on_connack_timer(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	struct upstream *up = t->arg;
	if (up->state == UP_CONNECTING)
		up_drop(up, UP_DROP_TIMEOUT, "no CONNACK within the timeout");
}

/* ---- libmosquitto callbacks: run inside loop_read/loop_write/loop_misc ---- */

static void cb_connect(struct mosquitto *mosq, void *obj, int rc)
{
	(void)mosq;
	struct upstream *up = obj;
	struct log_fields f = up_fields(up);
	up->awaiting_connack = false; /* a CONNACK, whatever it says */
	if (rc != 0) {
		if (rc > 0 && rc < 6)
			up->m.refusals[rc]++;
		up_drop(up, UP_DROP_CONNACK_REFUSED, mosquitto_connack_string(rc));
		return;
	}
	set_state(up, UP_CONNECTED);
	/* libmosquitto formats a line for every packet it sends or receives
	 * (a malloc, a vsnprintf and a lock each, two per reading) whenever a
	 * log callback is set. What we need from it is why a connection
	 * attempt failed; once connected, drops are explained by the return
	 * codes and errno. At debug level the library's words stay on. */
	if (!log_enabled(LOG_DEBUG))
		mosquitto_log_callback_set(up->mosq, NULL);
	up->attempts = 0;
	up->m.connects++;
	up->m.last_connected_unix_ms = wall_ms();
	up->m.why[0] = '\0';
	if (up->presence_topic)
		(void)mosquitto_publish(up->mosq, NULL, up->presence_topic, (int)strlen(up->birth),
					up->birth, 1, true);
	if (up->sub_filter)
		(void)mosquitto_subscribe(up->mosq, &up->sub_mid, up->sub_filter, 1);
	ev_timer_stop(up->loop, &up->connack_timer);
	log_event(LOG_NOTICE, EV_UPSTREAM_CONNECTED, &f,
		  "connected to upstream %s:%u as %s (%llu queued)", up->set.host, up->set.port,
		  up->set.client_id, (unsigned long long)spool_count(up->spool));
}

static void cb_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	(void)mosq;
	struct upstream *up = obj;
	up_drop(up, UP_DROP_CLOSED, rc == 0 ? "disconnected" : mosquitto_strerror(rc));
}

static void cb_publish(struct mosquitto *mosq, void *obj, int mid)
{
	(void)mosq;
	struct upstream *up = obj;
	uint64_t sent_us;
	if (spool_ack(up->spool, mid, &sent_us) != 0)
		return; /* not a reading: the birth message */
	up->acked_since_kick = true;
	up->m.forwarded++;
	prom_observe(&up->m.puback, (double)(ev_clock_us() - sent_us) / 1e6, 1);
}

/* The broker's SUBACK for the downlink's subscription: the moment commands
 * can arrive, or the reason they never will (a broker ACL refusing the
 * filter answers 0x80, which nothing else would reveal). */
static void cb_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
	(void)mosq;
	struct upstream *up = obj;
	if (mid != up->sub_mid || !up->sub_filter || n < 1)
		return; /* a subscription a reload replaced since */
	up->sub_mid = 0;
	struct log_fields f = up_fields(up);
	up->m.downlink_subscribed = granted[0] >= 0 && granted[0] <= 2;
	if (up->m.downlink_subscribed)
		log_event(LOG_INFO, EV_DOWNLINK_SUBSCRIBED, &f,
			  "subscribed to %s upstream (QoS %d granted): commands can arrive",
			  up->sub_filter, granted[0]);
	else
		log_event(LOG_ERR, EV_DOWNLINK_SUBSCRIBE_REFUSED, &f,
			  "upstream refused the subscription to %s (return code %d): no "
			  "command can arrive; check the broker's ACL for client id %s",
			  up->sub_filter, granted[0], up->set.client_id);
}

static void cb_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	(void)mosq;
	struct upstream *up = obj;
	if (up->on_command && msg->topic)
		up->on_command(up->dl_arg, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

int upstream_set_downlink(struct upstream *up, const char *filter,
			  void (*on_command)(void *arg, const char *topic, const void *payload,
					     size_t len),
			  bool (*hold)(void *arg), void *arg)
{
	char *f = filter ? strdup(filter) : NULL;
	if (filter && !f)
		return -1;
	bool same = (!f && !up->sub_filter) || (f && up->sub_filter && strcmp(f, up->sub_filter) == 0);
	if (!same)
		up->m.downlink_subscribed = false;
	if (!same && up->state == UP_CONNECTED) {
		if (up->sub_filter)
			(void)mosquitto_unsubscribe(up->mosq, NULL, up->sub_filter);
		if (f)
			(void)mosquitto_subscribe(up->mosq, &up->sub_mid, f, 1);
	}
	free(up->sub_filter);
	up->sub_filter = f;
	up->on_command = on_command;
	up->hold = hold;
	up->dl_arg = arg;
	return 0;
}

static void cb_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	(void)mosq;
	struct upstream *up = obj;
	if (!(level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)))
		return;
	/* "OpenSSL Error[0]: error:0A000418:SSL routines::tlsv1 alert unknown ca":
	 * kept for the line up_drop writes (said once, with what to check);
	 * the library's own words only at debug level. */
	const char *why = strstr(str, "routines::");
	snprintf(up->lib_error, sizeof up->lib_error, "%s", why ? why + strlen("routines::") : str);
	if (log_enabled(LOG_DEBUG)) {
		struct log_fields f = up_fields(up);
		log_event(LOG_DEBUG, EV_UPSTREAM_LIBRARY, &f, "libmosquitto: %s", str);
	}
}

/* ---- connecting ---- */

static void *connect_thread(void *p)
{
	struct upstream *up = p;
	up_verify_reset();
	up->thread_rc = mosquitto_connect(up->mosq, up->set.host, up->set.port,
					  (int)up->set.keepalive_s);
	up->thread_errno = errno;
	uint64_t one = 1;
	ssize_t w = write(up->efd, &one, sizeof one);
	(void)w;
	return NULL;
}

void upstream_flush(struct upstream *up)
{
	if (held(up)) {
		update_interest(up);
		return; /* the flush of the spool ends it; the next iteration writes */
	}
	if (up->mosq && up->io.fd >= 0 && up->state == UP_CONNECTED)
		pump(up); /* what a hold kept back */
	if (up->flush_blocked)
		return;
	int flushed = up_flush_writes(up);
	if (flushed == 0)
		return;
	if (flushed < 0) {
		/* The broker may have closed after telling us why (a TLS alert
		 * refusing our certificate): read that first, so the failure is
		 * reported with its reason rather than as a failed write. */
		char why[128];
		snprintf(why, sizeof why, "write failed: %s", strerror(errno));
		int rc = mosquitto_loop_read(up->mosq, 1);
		if (up->mosq)
			up_drop(up, UP_DROP_NETWORK,
				rc == MOSQ_ERR_SUCCESS
					? why
					: up_failure_reason(rc, errno, why, sizeof why));
		return;
	}
	/* The socket buffer is full: the rest goes when it is writable. */
	up->flush_blocked = true;
	update_interest(up);
}

static void on_connect_done(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)events;
	struct upstream *up = io->arg;
	uint64_t v;
	ssize_t r = read(up->efd, &v, sizeof v);
	(void)r;
	pthread_join(up->thread, NULL);
	up->thread_running = false;
	if (up->thread_rc != MOSQ_ERR_SUCCESS) {
		/* A TLS failure says MOSQ_ERR_TLS; these mean TLS was up and the
		 * broker closed as the CONNECT went out (see up_explain()). */
		int rc = up->thread_rc, e = up->thread_errno;
		up->awaiting_connack = up->set.tls &&
				       (rc == MOSQ_ERR_PROTOCOL || rc == MOSQ_ERR_CONN_LOST ||
					(rc == MOSQ_ERR_ERRNO &&
					 (e == ECONNRESET || e == EPIPE || e == EPROTO)));
		char why[256];
		up_drop(up, UP_DROP_NETWORK,
			up_failure_reason(up->thread_rc, up->thread_errno, why, sizeof why));
		return;
	}
	set_state(up, UP_CONNECTING);
	if (up->stopping)
		return;
	if (ev_io_start(loop, &up->io, mosquitto_socket(up->mosq), EPOLLIN | EPOLLOUT, on_io, up) !=
	    0) {
		up_drop(up, UP_DROP_NETWORK, strerror(errno));
		return;
	}
	up_buffer_writes(up);
	up->awaiting_connack = true;
	ev_timer_start(loop, &up->misc_timer, 1000);
	ev_timer_start(loop, &up->connack_timer, 1000ull * (up->set.keepalive_s + 10));
	if (up->reconnect_wanted)
		up_drop(up, UP_DROP_RECONFIGURED, "settings changed");
}

static void on_retry_timer(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	up_connect(t->arg);
}

static void up_connect(struct upstream *up)
{
	if (up->state != UP_IDLE || up->stopping)
		return;
	struct log_fields f = up_fields(up);
	/* With a downlink the session is persistent: the broker keeps the
	 * subscription and queues commands while the gateway is away. */
	struct mosquitto *m = mosquitto_new(up->set.client_id, up->sub_filter == NULL, up);
	if (!m) {
		log_event(LOG_ERR, EV_UPSTREAM_CONNECT_FAILED, &f, "mosquitto_new: %s",
			  strerror(errno));
		ev_timer_start(up->loop, &up->retry_timer, up->set.reconnect_max_ms);
		return;
	}
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	/* libmosquitto holds QoS 1 messages beyond 20 in flight back in its own
	 * queue unless told otherwise; our window is the spool's, so open its. */
	mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, (int)up->set.inflight);
	mosquitto_connect_callback_set(m, cb_connect);
	mosquitto_disconnect_callback_set(m, cb_disconnect);
	mosquitto_publish_callback_set(m, cb_publish);
	mosquitto_message_callback_set(m, cb_message);
	mosquitto_subscribe_callback_set(m, cb_subscribe);
	mosquitto_log_callback_set(m, cb_log);
	int rc = MOSQ_ERR_SUCCESS;
	if (up->presence_topic)
		rc = mosquitto_will_set(m, up->presence_topic, (int)strlen(up->will), up->will, 1,
					true);
	if (rc == MOSQ_ERR_SUCCESS && up->set.username)
		rc = mosquitto_username_pw_set(m, up->set.username, up->set.password);
	if (rc == MOSQ_ERR_SUCCESS && up->set.tls) {
		/* Our own context: libmosquitto's cannot check CRLs. It carries
		 * the CA, CRL, client certificate and host name check; the
		 * defaults libmosquitto would add are off. */
		if (!up->ctx)
			rc = MOSQ_ERR_TLS;
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, up->ctx);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_insecure_set(m, false); /* verify the host name */
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		log_event(LOG_ERR, EV_UPSTREAM_CONNECT_FAILED, &f, "upstream TLS setup: %s",
			  mosquitto_strerror(rc));
		mosquitto_destroy(m);
		ev_timer_start(up->loop, &up->retry_timer, up->set.reconnect_max_ms);
		return;
	}
	up->mosq = m;
	set_state(up, UP_RESOLVING);
	up->thread_running = pthread_create(&up->thread, NULL, connect_thread, up) == 0;
	if (!up->thread_running)
		up_drop(up, UP_DROP_NETWORK, "cannot start connect thread");
}

static void presence_free(struct upstream *up)
{
	free(up->presence_topic);
	free(up->birth);
	free(up->will);
	free(up->goodbye);
	up->presence_topic = up->birth = up->will = up->goodbye = NULL;
}

int upstream_set_presence(struct upstream *up, const char *topic, const char *birth,
			  const char *will, const char *goodbye)
{
	presence_free(up);
	if (!topic)
		return 0;
	up->presence_topic = strdup(topic);
	up->birth = strdup(birth);
	up->will = strdup(will);
	up->goodbye = strdup(goodbye);
	if (!up->presence_topic || !up->birth || !up->will || !up->goodbye) {
		presence_free(up);
		return -1;
	}
	return 0;
}

bool upstream_publish_aside(struct upstream *up, const char *topic, const char *payload)
{
	return up->state == UP_CONNECTED &&
	       mosquitto_publish(up->mosq, NULL, topic, (int)strlen(payload), payload, 0, false) ==
		       MOSQ_ERR_SUCCESS;
}

const struct upstream_metrics *upstream_metrics(const struct upstream *up)
{
	return &up->m;
}

struct upstream *upstream_new(struct ev_loop *loop, struct spool *spool,
			      void (*on_progress)(void *), void *arg)
{
	if (up_plain_init() != 0)
		return NULL;
	struct upstream *up = calloc(1, sizeof *up);
	if (!up)
		return NULL;
	up->loop = loop;
	up->spool = spool;
	up->on_progress = on_progress;
	up->arg = arg;
	up->io.fd = -1;
	up->efd_io.fd = -1;
	up->m.down_since_ms = ev_now_ms(loop);
	ev_timer_init(&up->retry_timer, on_retry_timer, up);
	ev_timer_init(&up->misc_timer, on_misc_timer, up);
	ev_timer_init(&up->connack_timer, on_connack_timer, up);
	up->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (up->efd < 0 || ev_io_start(loop, &up->efd_io, up->efd, EPOLLIN, on_connect_done, up)) {
		if (up->efd >= 0)
			close(up->efd);
		free(up);
		return NULL;
	}
	return up;
}

int upstream_configure(struct upstream *up, const struct cfg_upstream *cfg, SSL_CTX *ctx)
{
	struct up_settings s;
	if (settings_copy(&s, cfg) != 0) {
		if (ctx)
			SSL_CTX_free(ctx);
		return -1;
	}
	/* The next connection uses the new context (new CA, CRL or client
	 * certificate files); the current one keeps its own. */
	if (up->ctx)
		SSL_CTX_free(up->ctx);
	up->ctx = ctx;
	if (ctx)
		SSL_CTX_set_cert_verify_callback(ctx, up_verify_and_record, NULL);
	bool differs = !up->configured || connection_differs(&up->set, &s);
	settings_free(&up->set);
	up->set = s;
	if (!up->configured) {
		up->configured = true;
		up_connect(up);
		return 0;
	}
	if (!differs) {
		upstream_kick(up);
		return 0;
	}
	switch (up->state) {
	case UP_IDLE:
		ev_timer_stop(up->loop, &up->retry_timer);
		up->attempts = 0;
		up_connect(up);
		break;
	case UP_RESOLVING:
		up->reconnect_wanted = true;
		break;
	case UP_CONNECTING:
	case UP_CONNECTED:
		up->reconnect_wanted = true;
		up_drop(up, UP_DROP_RECONFIGURED, "upstream settings changed");
		break;
	}
	return 0;
}

void upstream_kick(struct upstream *up)
{
	if (up->state == UP_CONNECTED)
		pump(up);
}

void upstream_free(struct upstream *up)
{
	if (!up)
		return;
	up->stopping = true;
	if (up->thread_running) {
		/* Wait briefly for the connect thread; a connect to a black hole
		 * can block for minutes, and then we leave it to process exit. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(up->thread, NULL, &ts) != 0) {
			pthread_detach(up->thread);
			return;
		}
		up->thread_running = false;
	}
	if (up->state == UP_CONNECTED && up->mosq) {
		/* A clean DISCONNECT, without letting the callback re-enter
		 * up_drop: we are tearing down, not reconnecting. */
		mosquitto_disconnect_callback_set(up->mosq, NULL);
		mosquitto_publish_callback_set(up->mosq, NULL);
		up_unbuffer_writes(up);
		/* A clean DISCONNECT makes the broker drop the will: say
		 * "offline" ourselves first (on the same stream, so before it). */
		if (up->presence_topic)
			(void)mosquitto_publish(up->mosq, NULL, up->presence_topic,
						(int)strlen(up->goodbye), up->goodbye, 1, true);
		if (mosquitto_disconnect(up->mosq) == MOSQ_ERR_SUCCESS)
			(void)mosquitto_loop_write(up->mosq, 1);
	}
	ev_io_stop(up->loop, &up->io);
	ev_io_stop(up->loop, &up->efd_io);
	ev_timer_stop(up->loop, &up->retry_timer);
	ev_timer_stop(up->loop, &up->misc_timer);
	ev_timer_stop(up->loop, &up->connack_timer);
	spool_requeue_inflight(up->spool);
	if (up->mosq)
		mosquitto_destroy(up->mosq);
	close(up->efd);
	settings_free(&up->set);
	presence_free(up);
	free(up->sub_filter);
	if (up->ctx)
		SSL_CTX_free(up->ctx);
	free(up);
}

SSL_CTX *upstream_tls_ctx(const struct upstream *up)
{
	return up->ctx;
}

bool upstream_connected(const struct upstream *up)
{
	return up->state == UP_CONNECTED;
}

const char *upstream_state_name(const struct upstream *up)
{
	return up_state_names[up->state];
}

