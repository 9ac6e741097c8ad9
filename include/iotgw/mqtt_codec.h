/* mqtt_codec: pure MQTT 3.1.1 (and 3.1) server-side codec.
 *
 * No I/O and no allocation: decoders read from a caller-owned byte range and
 * return views (struct mqtt_str) that point into it, valid as long as that
 * range is; encoders write into the caller's buffer; reasons are static. Every function that reads network bytes returns an error for bad
 * input, never asserts. Section numbers refer to the MQTT 3.1.1 OASIS
 * standard. */
#ifndef IOTGW_MQTT_CODEC_H
#define IOTGW_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQTT_MAX_REMAINING_LENGTH 268435455u /* 2.2.3: four varint bytes */

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
};

enum mqtt_result {
	MQTT_OK = 0,
	MQTT_INCOMPLETE,  /* not enough bytes yet: read more, try again */
	MQTT_E_MALFORMED, /* protocol violation: close the connection */
	MQTT_E_TOO_LARGE, /* remaining length above the caller's limit */
};

/* CONNACK return codes, 3.2.2.3 */
enum mqtt_connack_rc {
	MQTT_CONNACK_ACCEPTED = 0,
	MQTT_CONNACK_BAD_PROTOCOL_VERSION = 1,
	MQTT_CONNACK_IDENTIFIER_REJECTED = 2,
	MQTT_CONNACK_SERVER_UNAVAILABLE = 3,
	MQTT_CONNACK_BAD_USERNAME_PASSWORD = 4,
	MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

/* A length-delimited view into a packet; not NUL-terminated. */
struct mqtt_str {
	const char *ptr;
	uint16_t len;
};

struct mqtt_frame {
	enum mqtt_type type;
	uint8_t flags;             /* low nibble of the first byte */
	uint32_t remaining_length; /* bytes of body after the fixed header */
	size_t header_len;         /* 2..5 bytes */
};

/* Parses the fixed header at the start of buf (2.2). Checks the varint is at
 * most 4 bytes and minimal enough to be legal, that the type is one a client may
 * send (CONNACK, SUBACK, UNSUBACK, PINGRESP and 0/15 are malformed from a
 * client), that the reserved flag bits are as 2.2.2 requires, and that
 * remaining_length <= max_remaining (else MQTT_E_TOO_LARGE) -- all before the
 * caller allocates or waits for the body. MQTT_INCOMPLETE if buf holds less
 * than a whole fixed header; the body need not be present. `why` (may be
 * NULL) receives a static description on error. */
enum mqtt_result mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_remaining,
				  struct mqtt_frame *out, const char **why);

struct mqtt_connect {
	struct mqtt_str protocol_name; /* "MQTT" (3.1.1) or "MQIsdp" (3.1) */
	uint8_t protocol_level;        /* 4 (3.1.1), 3 (3.1), 5 seen from MQTT 5 */
	bool clean_session;
	uint16_t keepalive; /* seconds, 0 = disabled */
	struct mqtt_str client_id;
	bool has_will;
	uint8_t will_qos;
	bool will_retain;
	struct mqtt_str will_topic;
	struct mqtt_str will_message; /* binary */
	bool has_username;
	struct mqtt_str username;
	bool has_password;
	struct mqtt_str password; /* binary */
	/* When decode returns MQTT_OK but the CONNECT must be refused with a
	 * CONNACK: the code (MQTT_CONNACK_BAD_PROTOCOL_VERSION for level 5 or any
	 * other unknown level, MQTT_CONNACK_IDENTIFIER_REJECTED for an empty client
	 * id with clean_session=0 (3.1.3.1) ), else MQTT_CONNACK_ACCEPTED. The
	 * remaining fields are only filled when it is ACCEPTED. */
	enum mqtt_connack_rc refuse;
};

/* Decodes a CONNECT body (3.1). flags is mqtt_frame.flags. Malformed: bad
 * lengths, unknown protocol name (3.1.2.1), reserved connect flag set
 * (3.1.2.3), will flags inconsistent (3.1.2.9-11), password without username
 * (3.1.2.9), strings that are not valid MQTT UTF-8 (1.5.3), trailing bytes. */
enum mqtt_result mqtt_decode_connect(uint8_t flags, const uint8_t *body, size_t len,
				     struct mqtt_connect *out, const char **why);

struct mqtt_publish {
	struct mqtt_str topic;
	uint8_t qos; /* 0, 1 or 2 */
	bool retain;
	bool dup;
	uint16_t packet_id; /* nonzero iff qos > 0 */
	const uint8_t *payload;
	size_t payload_len;
};

/* Decodes a PUBLISH body (3.3). Malformed: QoS 3, DUP with QoS 0 (3.3.1.1),
 * empty topic, topic with wildcards (3.3.2.1) or invalid UTF-8, packet id 0
 * with QoS > 0 (2.3.1). */
enum mqtt_result mqtt_decode_publish(uint8_t flags, const uint8_t *body, size_t len,
				     struct mqtt_publish *out, const char **why);

/* Decodes the packet identifier of PUBACK/PUBREC/PUBREL/PUBCOMP (body len 2,
 * id nonzero). */
enum mqtt_result mqtt_decode_ack(const uint8_t *body, size_t len, uint16_t *packet_id,
				 const char **why);

/* Validates a SUBSCRIBE (3.8) or UNSUBSCRIBE (3.10) body: packet id, at least
 * one topic filter, each valid UTF-8 and a valid filter (4.7.1), and for
 * SUBSCRIBE a requested QoS byte <= 2 with reserved bits 0. `count` receives
 * the number of filters (for the SUBACK). */
enum mqtt_result mqtt_decode_subscribe(const uint8_t *body, size_t len, uint16_t *packet_id,
				       size_t *count, const char **why);
enum mqtt_result mqtt_decode_unsubscribe(const uint8_t *body, size_t len, uint16_t *packet_id,
					 size_t *count, const char **why);

/* Encoders write a complete packet into out and return its length, or 0 if
 * cap is too small. */
size_t mqtt_encode_connack(uint8_t *out, size_t cap, bool session_present, uint8_t rc);
/* The i-th filter (0-based) of a SUBSCRIBE (with_qos, its requested QoS in
 * *qos) or UNSUBSCRIBE (*qos = 0) body that mqtt_decode_subscribe or
 * _unsubscribe accepted; false past the last. The view points into body. */
bool mqtt_filter_at(const uint8_t *body, size_t len, bool with_qos, size_t i,
		    struct mqtt_str *filter, uint8_t *qos);
/* The same in one pass: *off starts at 0 and is advanced past each filter
 * (mqtt_filter_at starts over each time: quadratic for a whole packet). */
bool mqtt_filter_next(const uint8_t *body, size_t len, bool with_qos, size_t *off,
		      struct mqtt_str *filter, uint8_t *qos);

/* A PUBLISH from the server (3.3), QoS 0 or 1, never retained: the whole
 * packet, or 0 when it does not fit cap or the arguments break a rule
 * (qos 1 needs a packet id, DUP only with qos 1, a topic of 1..65535
 * bytes). The caller checks the topic's UTF-8. */
size_t mqtt_encode_publish(uint8_t *out, size_t cap, const char *topic, size_t topic_len,
			   const uint8_t *payload, size_t payload_len, uint8_t qos, bool dup,
			   uint16_t packet_id);
/* PUBACK, PUBREC, PUBREL (flags 0x2 per 3.6.1), PUBCOMP, UNSUBACK */
size_t mqtt_encode_ack(uint8_t *out, size_t cap, enum mqtt_type type, uint16_t packet_id);
size_t mqtt_encode_pingresp(uint8_t *out, size_t cap);
size_t mqtt_encode_suback(uint8_t *out, size_t cap, uint16_t packet_id, const uint8_t *codes,
			  size_t ncodes);

/* Writes the 2.2.3 varint for len into out[0..3]; returns the byte count
 * (1..4), or 0 if len > MQTT_MAX_REMAINING_LENGTH. */
size_t mqtt_varint_encode(uint32_t len, uint8_t out[4]);

/* MQTT UTF-8 string rules (1.5.3): well-formed UTF-8, no surrogates, no U+0000. */
bool mqtt_utf8_valid(const char *p, size_t len);

/* Topic filter syntax (4.7.1): '#' only last and alone in its level, '+'
 * alone in its level. */
bool mqtt_filter_valid(const char *filter, size_t len);

/* Does topic (a name, no wildcards) match filter (4.7)? Topics starting with
 * '$' are not matched by a leading wildcard (4.7.2). */
bool mqtt_topic_matches(const char *filter, const char *topic, size_t topic_len);

#endif
