/* downlink: commands from the upstream broker to devices.
 *
 * Owns the command queue: every command the gateway took from the broker
 * and has not yet delivered, expired or rejected, per device, in arrival
 * order; its rows in the spool's database (table `commands`, written in
 * the spool's own transactions, so a command is durable exactly when a
 * reading committed with it is); the devices' subscriptions (kept across
 * reconnects for clean session = 0, in memory); delivery to the sessions;
 * expiry; and the outcome reported upstream.
 *
 * Data flows one way: the upstream hands commands in (downlink_command_in),
 * sessions hand in SUBSCRIBE, UNSUBSCRIBE and PUBACK (through the owner,
 * which names a session by its token, a void * here compared and passed
 * on, never followed), and downlink_pump, called once per owner turn,
 * hands PUBLISHes for the sessions to the deliver callback. Nothing here calls back into the caller of
 * downlink_command_in or of the session functions.
 *
 * Delivery: QoS 1 (or 0, as the device subscribed) in order per device, at
 * most DL_INFLIGHT unacknowledged; an unacknowledged command is sent again
 * (DUP, same packet id) when a clean-session-0 device reconnects, and
 * afresh to a clean-session-1 device once it subscribes again. The broker's
 * PUBACK for a command goes out only once the command is on disk
 * (downlink_holding_acks). */
#ifndef IOTGW_DOWNLINK_H
#define IOTGW_DOWNLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/config.h"
#include "iotgw/evloop.h"
#include "iotgw/spool.h"

#define DL_INFLIGHT 8 /* unacknowledged commands per device */
#define DL_SUBS_MAX 16 /* subscriptions per device */

struct downlink;
struct dl_device;

struct downlink_metrics {
	uint64_t received, delivered, expired, rejected, resent;
	uint64_t subscribes, subscribe_refusals;
};

struct downlink_hooks {
	/* Hands a whole packet to the device's session (0, or -1: it cannot). */
	int (*deliver)(void *arg, void *session, const uint8_t *pkt, size_t n);
	/* Has the gateway ever seen this device (a reading, a connection)? */
	bool (*known)(void *arg, const char *device);
	void *arg;
};

/* Creates the table if needed, loads the commands a previous run left and
 * hooks into the spool's transactions. NULL with a reason in err. */
struct downlink *downlink_new(struct ev_loop *loop, struct spool *spool,
			      const struct downlink_hooks *hooks, char *err, size_t errlen);
/* Applies [downlink] (at start and reload) for gateway `name`. 0, or -1 out of memory. */
int downlink_configure(struct downlink *dl, const struct cfg_downlink *cfg, const char *name);
/* Unhooks from the spool (what is staged is dropped: the broker sends it again). */
void downlink_free(struct downlink *dl);

/* The upstream subscription ([downlink] topic with its placeholders as
 * '+'), or NULL when the downlink is off. */
const char *downlink_subscription(const struct downlink *dl);
/* A message on the subscription. */
void downlink_command_in(struct downlink *dl, const char *topic, const void *payload, size_t len);
/* A command taken from the broker is not on disk yet: its PUBACK must wait. */
bool downlink_holding_acks(const struct downlink *dl);

/* A session of `device` became active (clean: its clean session flag).
 * Returns the device's record, and in *session_present whether state of a
 * previous clean-session-0 connection was kept. NULL out of memory. */
struct dl_device *downlink_attach(struct downlink *dl, const char *device, bool clean,
				  void *session, bool *session_present);
/* The device's record while `session` is attached to it, else NULL (a
 * session that was taken over, or never attached). */
struct dl_device *downlink_of(struct downlink *dl, const char *device, const void *session);
/* The session ended (a no-op when another session of the device took over). */
void downlink_detach(struct downlink *dl, struct dl_device *d, void *session);
/* One filter of a SUBSCRIBE, already allowed by the listener's ACL:
 * returns the granted QoS (0 or 1), or 0x80 when the downlink is off or
 * the device has DL_SUBS_MAX subscriptions. */
uint8_t downlink_subscribe(struct downlink *dl, struct dl_device *d, const char *filter,
			   size_t len, uint8_t qos);
void downlink_unsubscribe(struct downlink *dl, struct dl_device *d, const char *filter,
			  size_t len);
/* The device acknowledged packet id pid; false when no command has it. */
bool downlink_puback(struct downlink *dl, struct dl_device *d, uint16_t pid);

/* Delivers what can be delivered now; once per loop iteration. */
void downlink_pump(struct downlink *dl);

uint64_t downlink_queued(const struct downlink *dl);
const struct downlink_metrics *downlink_metrics(const struct downlink *dl);

#endif
