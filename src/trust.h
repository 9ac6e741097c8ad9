/* trust: who a connecting device is, and whether it may be (session.c asks,
 * at CONNECT). The identity comes from the client certificate (tls =
 * mutual), the password file (password_file) or, where nothing is
 * authenticated, the client id; then the listener's client_id policy
 * applies. No I/O, no logging: session.c logs the verdict once, at the
 * boundary, with the connection's fields. */
#ifndef IOTGW_TRUST_H
#define IOTGW_TRUST_H

#include "iotgw/events.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "iotgw/mqtt_codec.h"

struct listener;

struct trust_verdict {
	uint8_t connack;   /* MQTT_CONNACK_ACCEPTED, or the refusal code */
	enum iotgw_event event; /* log event of a refusal */
	char why[256];     /* reason of a refusal, printable */
};

/* Sets device (cap >= IOTGW_DEVICE_MAX + 1) for a CONNECT c with client id
 * client_id (NUL-terminated copy of c->client_id) on listener l;
 * cert_identity is the identity taken from the verified certificate
 * (tls = mutual), "" when it was unusable. */
void trust_connect(const struct listener *l, const char *cert_identity,
		   const struct mqtt_connect *c, const char *client_id, char *device, size_t cap,
		   struct trust_verdict *v);

/* A certificate expiring within window_s of now: true, with a message for
 * event=cert_expiring. */
bool trust_cert_expiring(time_t not_after, time_t now, unsigned window_s, const char *device,
			 char *msg, size_t cap);

#endif
