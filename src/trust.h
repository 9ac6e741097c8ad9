/* trust: who a connecting device is, and whether it may be (session.c asks,
 * at CONNECT). The identity comes from the client certificate (tls =
 * mutual, or the CN a TLS-terminating balancer verified and passed in its
 * PROXY header: proxy_identity = ssl-cn), the password file (password_file)
 * or, where nothing is
 * authenticated, the client id; then the listener's client_id policy
 * applies. Pure policy: it sees a listener only through struct
 * trust_policy, and does no I/O and no logging (session.c logs the
 * verdict once, at the boundary, with the connection's fields). */
#ifndef IOTGW_TRUST_H
#define IOTGW_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "iotgw/auth.h"
#include "iotgw/config.h"
#include "iotgw/events.h"
#include "iotgw/mqtt_codec.h"

/* What trust_connect needs to know about a listener. Built by
 * trust_policy_init whenever the listener takes its settings (listener_open,
 * listener_update); it borrows the name and password file, which the
 * listener owns and keeps as long as the policy. */
struct trust_policy {
	const char *listener; /* its name, for the reasons of refusals */
	enum cfg_tls_mode tls;
	bool balancer_cn; /* proxy_identity = ssl-cn: the balancer's CN is the certificate's */
	enum auth_cid_policy client_id;   /* checked only with an authenticated identity */
	const struct auth_pwfile *pwfile; /* NULL: no password_file */
};

void trust_policy_init(struct trust_policy *p, const char *listener,
		       const struct cfg_listener *cfg, const struct auth_pwfile *pwfile);

/* Is publish_acl enforced on this listener? On one with no authenticated
 * identity (tls = off or server, no password_file) the device id is
 * whatever the client says, so a topic ACL keyed on it protects nothing by
 * default: it is enforced there only when publish_acl was set explicitly.
 * Everywhere else it always is, unless publish_acl = none. */
bool trust_acl_enforced(const struct cfg_listener *cfg);

struct trust_verdict {
	uint8_t connack;   /* MQTT_CONNACK_ACCEPTED, or the refusal code */
	enum iotgw_event event; /* log event of a refusal */
	char why[256];     /* reason of a refusal, printable */
};

/* A password listener's CONNECT needs its password checked, a KDF run of
 * milliseconds, which the caller does off its event loop and then passes
 * in: */
enum trust_pw { TRUST_PW_UNCHECKED, TRUST_PW_GOOD, TRUST_PW_BAD };
/* v->connack when the password must be checked first: device is set to the
 * device the user name names; check its password and call again. */
#define TRUST_CHECK_PASSWORD 0xff

/* Sets device (cap >= AUTH_DEVICE_MAX + 1) for a CONNECT c with client id
 * client_id (NUL-terminated copy of c->client_id) on a listener with policy
 * p; cert_identity is the identity taken from the verified certificate
 * (tls = mutual, or the balancer's CN), "" when it was unusable; pw: the result of the password
 * check asked for before (TRUST_CHECK_PASSWORD), or UNCHECKED. A refusal
 * may leave device set (to the identity that was refused), for the log
 * line. */
void trust_connect(const struct trust_policy *p, const char *cert_identity,
		   const struct mqtt_connect *c, const char *client_id, enum trust_pw pw,
		   char *device, size_t cap, struct trust_verdict *v);

/* A certificate expiring within window_s of now: true, with a message for
 * event=cert_expiring. */
bool trust_cert_expiring(time_t not_after, time_t now, unsigned window_s, const char *device,
			 char *msg, size_t cap);

#endif
