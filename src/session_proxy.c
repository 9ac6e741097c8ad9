/* session_proxy: what a PROXY protocol header does to a session, the first
 * step of one on a proxy_protocol listener (session.c holds the state
 * machine; conn_proxy.c reads the header).
 *
 * The header names the device's address, which becomes the session's peer:
 * in every log line, and in the per-address limits (connection rate,
 * handshakes, password backoff), which a balancer's connections skip at
 * accept and meet here, so that devices behind one balancer do not share
 * one address's allowance. The balancer's own address is logged with the
 * header. With proxy_identity = ssl-cn the client certificate CN the
 * balancer verified names the device, as a certificate's does on a
 * tls = mutual listener (trust_connect). */
#include <stdio.h>
#include <string.h>

#include "gateway_int.h"
#include "iotgw/log.h"
#include "session_int.h"

static void log_header(struct session *s, const struct conn_proxied *p, const char *via)
{
	struct log_fields f = session_fields(s);
	if (p->version == 0)
		log_event(LOG_DEBUG, EV_PROXY_HEADER, &f,
			  "no PROXY protocol header from %s (proxy_protocol = optional): its own "
			  "address stands",
			  via);
	else if (!p->has_source)
		log_event(LOG_DEBUG, EV_PROXY_HEADER, &f,
			  "PROXY protocol v%u header from %s names no address (LOCAL or "
			  "UNKNOWN): the balancer's own address stands",
			  p->version, via);
	else
		log_event(LOG_DEBUG, EV_PROXY_HEADER, &f,
			  "PROXY protocol v%u header from balancer %s: device at %s", p->version,
			  via, s->peer);
}

bool session_proxied(void *owner, const struct conn_proxied *p)
{
	struct session *s = owner;
	struct listener *l = s->listener;
	struct gateway *gw = s->gw;
	if (s->state == SESS_CLOSED)
		return false; /* closed earlier in this loop turn (a stop); freed after it */
	if (!p->ok) {
		l->m.proxy_refusals[PROXY_REFUSED_INVALID]++;
		session_close(s, LOG_WARNING, EV_PROXY_HEADER_INVALID, "%s; connection closed",
			      p->error);
		return false;
	}
	char via[sizeof s->peer];
	snprintf(via, sizeof via, "%s", s->peer);
	/* The handshake counted under the balancer's address (session_new)
	 * moves to the device's; set_state ends it there. */
	bool tls = conn_is_tls(s->conn);
	if (tls)
		gateway_hs_end(gw, s->peer);
	if (p->has_source)
		snprintf(s->peer, sizeof s->peer, "%s", p->source);
	bool admitted = gateway_conn_admit(gw, l, s->peer) &&
			(!tls || gateway_hs_admit(gw, l, s->peer));
	if (tls)
		gateway_hs_begin(gw, s->peer);
	if (log_enabled(LOG_DEBUG))
		log_header(s, p, via);
	if (!admitted) {
		/* The limit logged the refusal (once per episode). */
		session_close(s, LOG_DEBUG, EV_CONNECTION_LIMIT,
			      "connection via %s refused at a per-address limit", via);
		return false;
	}
	if (l->proxy_identity != CFG_PROXY_ID_SSL_CN)
		return true;
	if (p->has_cn) {
		snprintf(s->cert_identity, sizeof s->cert_identity, "%s", p->cn);
		snprintf(s->device, sizeof s->device, "%s", p->cn);
	} else {
		/* Refused at CONNECT with "not authorized", after this reason. */
		s->cert_identity[0] = '\0';
		struct log_fields f = session_fields(s);
		log_event(LOG_WARNING, EV_IDENTITY_MISSING, &f,
			  "no device identity from balancer %s (proxy_identity = ssl-cn): %s", via,
			  p->cn_why);
	}
	return true;
}

void session_proxy_timeout(struct session *s)
{
	s->listener->m.proxy_refusals[PROXY_REFUSED_TIMEOUT]++;
	session_close(s, LOG_WARNING, EV_PROXY_HEADER_TIMEOUT,
		      "no complete PROXY protocol header within %u ms (handshake_timeout); "
		      "connection closed",
		      s->listener->handshake_timeout_ms);
}
