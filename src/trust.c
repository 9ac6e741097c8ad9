/* trust: the CONNECT-time identity and policy decisions; see trust.h. */
#include "trust.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The device is named by a verified certificate: its own (tls = mutual)
 * or the one a TLS-terminating balancer verified (proxy_identity). */
static bool cert_named(enum cfg_tls_mode tls, bool balancer_cn)
{
	return tls == CFG_TLS_MUTUAL || balancer_cn;
}

/* The listener's identity is authenticated (not merely claimed by the
 * client): the client id policy applies, and publish_acl is always
 * enforced. */
static bool authenticated(enum cfg_tls_mode tls, bool balancer_cn, bool password_file)
{
	return cert_named(tls, balancer_cn) || password_file;
}

void trust_policy_init(struct trust_policy *p, const char *listener,
		       const struct cfg_listener *cfg, const struct auth_pwfile *pwfile)
{
	*p = (struct trust_policy){
		.listener = listener,
		.tls = cfg->tls,
		.balancer_cn = cfg->proxy_identity == CFG_PROXY_ID_SSL_CN,
		.client_id = cfg->client_id,
		.pwfile = pwfile,
	};
}

bool trust_acl_enforced(const struct cfg_listener *cfg)
{
	if (cfg->npublish_acl == 0)
		return false; /* publish_acl = none */
	if (authenticated(cfg->tls, cfg->proxy_identity == CFG_PROXY_ID_SSL_CN,
			  cfg->password_file.path != NULL))
		return true;
	return cfg->publish_acl_line != 0;
}

/* The device id of a client without a certificate: its client id, or the
 * <id> of a Watson IoT client id "d:<org>:<type>:<id>". */
static void device_from_client_id(const char *cid, char *out, size_t cap)
{
	const char *id = cid;
	if (strncmp(cid, "d:", 2) == 0) {
		const char *p = strchr(cid + 2, ':');
		p = p ? strchr(p + 1, ':') : NULL;
		if (p)
			id = p + 1;
	}
	snprintf(out, cap, "%s", id);
}

__attribute__((format(printf, 4, 5))) static void refuse(struct trust_verdict *v, uint8_t rc,
							 enum iotgw_event event, const char *fmt,
							 ...)
{
	v->connack = rc;
	v->event = event;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof v->why, fmt, ap);
	va_end(ap);
}

/* password_file listeners: the device is who its password says it is. The
 * device cannot tell an unknown id from a wrong password (same code). */
static bool password_ok(const struct trust_policy *p, const struct mqtt_connect *c,
			enum trust_pw pw, char *device, size_t cap, struct trust_verdict *v)
{
	char dev[AUTH_DEVICE_MAX + 1], why[160];
	if (!c->has_username || !c->has_password) {
		refuse(v, MQTT_CONNACK_BAD_USERNAME_PASSWORD, EV_AUTH_FAILED,
		       "listener %s requires a user name and password", p->listener);
		return false;
	}
	if (auth_password_device(c->username.ptr, c->username.len, c->client_id.ptr,
				 c->client_id.len, dev, sizeof dev, why, sizeof why) != 0) {
		refuse(v, MQTT_CONNACK_BAD_USERNAME_PASSWORD, EV_AUTH_FAILED, "%s", why);
		return false;
	}
	if (pw == TRUST_PW_UNCHECKED) {
		snprintf(device, cap, "%s", dev);
		v->connack = TRUST_CHECK_PASSWORD;
		return false;
	}
	if (pw != TRUST_PW_GOOD) {
		refuse(v, MQTT_CONNACK_BAD_USERNAME_PASSWORD, EV_AUTH_FAILED,
		       "wrong password for device %s (or no such device in the password file)",
		       dev);
		return false;
	}
	snprintf(device, cap, "%s", dev);
	return true;
}

void trust_connect(const struct trust_policy *p, const char *cert_identity,
		   const struct mqtt_connect *c, const char *client_id, enum trust_pw pw,
		   char *device, size_t cap, struct trust_verdict *v)
{
	v->connack = MQTT_CONNACK_ACCEPTED;
	v->event = EV_NONE;
	v->why[0] = '\0';
	/* Device ids end up in upstream topic names and journald fields: no
	 * wildcards, level separators, spaces or control bytes. */
	if (cert_named(p->tls, p->balancer_cn)) {
		if (!auth_device_id_valid(cert_identity, strlen(cert_identity))) {
			refuse(v, MQTT_CONNACK_NOT_AUTHORIZED, EV_CONNECT_REFUSED,
			       "certificate identity is not a usable device id");
			return;
		}
		snprintf(device, cap, "%s", cert_identity);
	} else {
		char dev[AUTH_DEVICE_MAX + 2];
		device_from_client_id(client_id, dev, sizeof dev);
		if (!auth_device_id_valid(dev, strlen(dev))) {
			refuse(v, MQTT_CONNACK_IDENTIFIER_REJECTED, EV_CONNECT_REFUSED,
			       "client id \"%.64s\" is not a usable device id (1-64 printable "
			       "characters, no '/', '+', '#' or spaces)",
			       client_id);
			return;
		}
		snprintf(device, cap, "%s", dev);
	}
	if (p->pwfile && !password_ok(p, c, pw, device, cap, v))
		return;
	if (authenticated(p->tls, p->balancer_cn, p->pwfile != NULL) &&
	    !auth_client_id_ok(p->client_id, device, c->client_id.ptr, c->client_id.len))
		refuse(v, MQTT_CONNACK_NOT_AUTHORIZED, EV_CLIENT_ID_MISMATCH,
		       "client id \"%.64s\" does not match device %s (client_id = %s)", client_id,
		       device, auth_cid_policy_name(p->client_id));
}

bool trust_cert_expiring(time_t not_after, time_t now, unsigned window_s, const char *device,
			 char *msg, size_t cap)
{
	if (!window_s || not_after - now > (time_t)window_s)
		return false;
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&not_after, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(msg, cap, "certificate of device %s expires %s (in %lld day(s)); provision a new one",
		 device, when, (long long)((not_after - now) / 86400));
	return true;
}
