/* mqtt_codec: pure MQTT 3.1.1 / 3.1 server-side codec (see mqtt_codec.h).
 *
 * Everything here reads bytes a peer chose, so every read is bounds-checked
 * through a small cursor (struct rd) and every rule violation is reported as a
 * result code with a static reason, never an assert. No I/O, no allocation,
 * no logging: the caller decides what to do with a bad packet. Section and
 * [MQTT-x.y.z-n] numbers refer to the MQTT 3.1.1 OASIS standard. */
#include "iotgw/mqtt_codec.h"

#include <string.h>

#include "iotgw/text.h"

static enum mqtt_result fail(const char **why, const char *msg, enum mqtt_result rc)
{
	if (why)
		*why = msg;
	return rc;
}

static enum mqtt_result malformed(const char **why, const char *msg)
{
	return fail(why, msg, MQTT_E_MALFORMED);
}

/* ---------------------------------------------------------------------------
 * Fixed header (2.2)
 */

/* The fixed-header flags a client must use for each packet type (2.2.2, Table
 * 2.2), or -1 for types a client never sends to a server (CONNACK, SUBACK,
 * UNSUBACK, PINGRESP) and the reserved types 0 and 15 (2.2.1). PUBLISH is -2:
 * its flags carry DUP/QoS/RETAIN and are checked separately. */
static int client_flags(unsigned type)
{
	switch (type) {
	case MQTT_CONNECT:
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
	case MQTT_PINGREQ:
	case MQTT_DISCONNECT:
		return 0x0;
	case MQTT_PUBREL:      /* [MQTT-3.6.1-1] */
	case MQTT_SUBSCRIBE:   /* [MQTT-3.8.1-1] */
	case MQTT_UNSUBSCRIBE: /* [MQTT-3.10.1-1] */
		return 0x2;
	case MQTT_PUBLISH:
		return -2;
	default:
		return -1;
	}
}

/* Body length of packets whose size is fixed by the standard, or -1. */
static long fixed_body_len(unsigned type)
{
	switch (type) {
	case MQTT_PUBACK:  /* 3.4.1 */
	case MQTT_PUBREC:  /* 3.5.1 */
	case MQTT_PUBREL:  /* 3.6.1 */
	case MQTT_PUBCOMP: /* 3.7.1 */
		return 2;
	case MQTT_PINGREQ:    /* 3.12.1 */
	case MQTT_DISCONNECT: /* 3.14.1 */
		return 0;
	default:
		return -1;
	}
}

enum mqtt_result mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_remaining,
				  struct mqtt_frame *out, const char **why)
{
	if (len < 1)
		return fail(why, "incomplete fixed header", MQTT_INCOMPLETE);

	/* The first byte alone decides type and flags: reject a bad one at once,
	 * without waiting for the length bytes. */
	unsigned type = buf[0] >> 4;
	unsigned flags = buf[0] & 0x0fu;
	int want = client_flags(type);
	if (want == -1)
		return malformed(why, "packet type not allowed from a client");
	if (want == -2) {
		/* 3.3.1.2 [MQTT-3.3.1-4]: QoS 3 is not a QoS. */
		if (((flags >> 1) & 0x3u) == 3)
			return malformed(why, "PUBLISH with QoS 3");
	} else if (flags != (unsigned)want) {
		/* 2.2.2 [MQTT-2.2.2-1], [MQTT-2.2.2-2] */
		return malformed(why, "invalid fixed header flags");
	}

	/* 2.2.3: Remaining Length, 7 bits per byte, least significant first, at
	 * most four bytes. */
	uint32_t value = 0;
	size_t i;
	for (i = 0; i < 4; i++) {
		if (1 + i >= len)
			return fail(why, "incomplete fixed header", MQTT_INCOMPLETE);
		uint8_t b = buf[1 + i];
		value |= (uint32_t)(b & 0x7fu) << (7 * i);
		if (!(b & 0x80u)) {
			/* 2.2.3 Table 2.4 gives each encoding length its
			 * own value range: a final 0x00 after a
			 * continuation byte is a longer encoding of a
			 * value that fits in fewer bytes. */
			if (i > 0 && b == 0)
				return malformed(why, "non-minimal remaining length encoding");
			break;
		}
		if (i == 3)
			return malformed(why, "remaining length longer than four bytes");
	}

	long fixed = fixed_body_len(type);
	if (fixed >= 0 && value != (uint32_t)fixed)
		return malformed(why, "wrong remaining length for a fixed-size packet");

	if (value > max_remaining)
		return fail(why, "packet larger than the configured maximum", MQTT_E_TOO_LARGE);

	out->type = (enum mqtt_type)type;
	out->flags = (uint8_t)flags;
	out->remaining_length = value;
	out->header_len = 2 + i;
	return MQTT_OK;
}

/* ---------------------------------------------------------------------------
 * Bounds-checked reader over a packet body
 */

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static size_t rd_left(const struct rd *r)
{
	return r->len - r->off;
}

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = r->p[r->off++];
	return true;
}

/* 1.5.2: two-byte integers are big-endian. */
static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)((unsigned)r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return true;
}

/* 1.5.3 (strings) and 3.1.3.4 / 3.1.3.6 (binary fields): a two-byte length
 * followed by that many bytes. Only the framing is checked here. */
static bool rd_lenbytes(struct rd *r, struct mqtt_str *s)
{
	uint16_t n;
	if (!rd_u16(r, &n))
		return false;
	if (rd_left(r) < n) {
		r->off -= 2;
		return false;
	}
	s->ptr = (const char *)(r->p + r->off);
	s->len = n;
	r->off += n;
	return true;
}

static bool str_eq(const struct mqtt_str *s, const char *lit)
{
	size_t n = strlen(lit);
	return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

static bool has_wildcard(const char *p, size_t len)
{
	return memchr(p, '+', len) != NULL || memchr(p, '#', len) != NULL;
}

/* ---------------------------------------------------------------------------
 * UTF-8 and topics (1.5.3, 4.7)
 */

bool mqtt_utf8_valid(const char *p, size_t len)
{
	/* 1.5.3: well-formed UTF-8, which also rules out the surrogates
	 * U+D800..U+DFFF [MQTT-1.5.3-1]; and [MQTT-1.5.3-2]: no U+0000. */
	return len == 0 || (text_utf8_span(p, len) == len && memchr(p, '\0', len) == NULL);
}

bool mqtt_filter_valid(const char *filter, size_t len)
{
	/* [MQTT-4.7.3-1]: at least one character. */
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = filter[i];
		if (c != '+' && c != '#')
			continue;
		/* [MQTT-4.7.1-2], [MQTT-4.7.1-3]: a wildcard must occupy a
		 * whole level ... */
		if (i > 0 && filter[i - 1] != '/')
			return false;
		if (c == '+') {
			if (i + 1 < len && filter[i + 1] != '/')
				return false;
		} else if (i + 1 != len) {
			/* ... and '#' must also be the last character. */
			return false;
		}
	}
	return true;
}

bool mqtt_topic_matches(const char *filter, const char *topic, size_t topic_len)
{
	if (!mqtt_filter_valid(filter, strlen(filter)))
		return false;

	/* 4.7.2 [MQTT-4.7.2-1]: a leading wildcard does not match topics that
	 * start with '$' ($SYS/... and the like). */
	if (topic_len > 0 && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;

	size_t f = 0, t = 0;
	for (;;) {
		/* Here both f and t are at the start of a level. */
		if (filter[f] == '#')
			return true; /* 4.7.1.2: the rest, whatever it is */
		if (filter[f] == '+') {
			/* 4.7.1.3: exactly one level, possibly empty. */
			f++;
			while (t < topic_len && topic[t] != '/')
				t++;
		} else {
			while (filter[f] != '\0' && filter[f] != '/' && t < topic_len &&
			       topic[t] != '/') {
				if (filter[f] != topic[t])
					return false;
				f++;
				t++;
			}
			if (filter[f] != '\0' && filter[f] != '/')
				return false;
			if (t < topic_len && topic[t] != '/')
				return false;
		}

		bool fend = filter[f] == '\0';
		bool tend = t == topic_len;
		if (fend && tend)
			return true;
		if (fend)
			return false;
		if (tend) {
			/* 4.7.1.2: "sport/#" also matches the parent "sport". */
			return filter[f + 1] == '#' && filter[f + 2] == '\0';
		}
		f++; /* both are at '/' */
		t++;
	}
}

/* A topic name as used in PUBLISH and in a Will: non-empty [MQTT-4.7.3-1],
 * valid UTF-8 (1.5.3) and free of wildcards [MQTT-3.3.2-2], [MQTT-4.7.1-1]. */
static const char *topic_name_problem(const struct mqtt_str *s)
{
	if (s->len == 0)
		return "empty topic name";
	if (!mqtt_utf8_valid(s->ptr, s->len))
		return "topic name is not valid UTF-8";
	if (has_wildcard(s->ptr, s->len))
		return "wildcard in topic name";
	return NULL;
}

/* ---------------------------------------------------------------------------
 * CONNECT (3.1)
 */

#define CF_RESERVED 0x01u
#define CF_CLEAN 0x02u
#define CF_WILL 0x04u
#define CF_WILL_QOS 0x18u
#define CF_WILL_RETAIN 0x20u
#define CF_PASSWORD 0x40u
#define CF_USERNAME 0x80u

enum mqtt_result mqtt_decode_connect(uint8_t flags, const uint8_t *body, size_t len,
				     struct mqtt_connect *out, const char **why)
{
	struct rd r = {body, len, 0};

	memset(out, 0, sizeof(*out));
	out->refuse = MQTT_CONNACK_ACCEPTED;

	/* 2.2.2: the frame parser has checked this already; repeated so the
	 * decoder is safe on its own. */
	if (flags != 0)
		return malformed(why, "invalid CONNECT fixed header flags");

	/* 3.1.2.1: protocol name. Comparing it byte for byte with the two
	 * names we know also settles its UTF-8 validity (1.5.3). */
	struct mqtt_str name;
	if (!rd_lenbytes(&r, &name))
		return malformed(why, "truncated protocol name");
	bool v31 = str_eq(&name, "MQIsdp");
	if (!v31 && !str_eq(&name, "MQTT"))
		return malformed(why, "unknown protocol name");

	/* 3.1.2.2 [MQTT-3.1.2-2]: an unsupported level (MQTT 5 says "MQTT"
	 * level 5) is answered with CONNACK 0x01. Nothing after the level is
	 * looked at: an MQTT 5 CONNECT carries properties we do not parse. */
	uint8_t level;
	if (!rd_u8(&r, &level))
		return malformed(why, "truncated protocol level");
	out->protocol_name = name;
	out->protocol_level = level;
	if (level != (v31 ? 3 : 4)) {
		out->refuse = MQTT_CONNACK_BAD_PROTOCOL_VERSION;
		if (why)
			*why = "unsupported protocol level";
		return MQTT_OK;
	}

	uint8_t cf;
	if (!rd_u8(&r, &cf))
		return malformed(why, "truncated connect flags");
	/* 3.1.2.3 [MQTT-3.1.2-3]: the reserved bit must be 0. MQTT 3.1 only
	 * called it "not used", so MQIsdp clients are not held to it. */
	if ((cf & CF_RESERVED) && !v31)
		return malformed(why, "reserved connect flag set");

	out->clean_session = (cf & CF_CLEAN) != 0;
	out->has_will = (cf & CF_WILL) != 0;
	out->will_qos = (uint8_t)((cf & CF_WILL_QOS) >> 3);
	out->will_retain = (cf & CF_WILL_RETAIN) != 0;
	out->has_username = (cf & CF_USERNAME) != 0;
	out->has_password = (cf & CF_PASSWORD) != 0;

	if (out->has_will) {
		/* 3.1.2.6 [MQTT-3.1.2-14]: Will QoS 3 is invalid. */
		if (out->will_qos == 3)
			return malformed(why, "will QoS 3");
	} else if (out->will_qos != 0 || out->will_retain) {
		/* [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]: without a
		 * Will, its QoS and retain bits must be 0. */
		return malformed(why, "will QoS or retain set without will flag");
	}
	/* 3.1.2.9 [MQTT-3.1.2-22]: no password without a user name. */
	if (out->has_password && !out->has_username)
		return malformed(why, "password flag without username flag");

	/* 3.1.2.10: keep alive in seconds, 0 disables it. */
	if (!rd_u16(&r, &out->keepalive))
		return malformed(why, "truncated keep alive");

	/* 3.1.3: the payload fields, in this order, present iff flagged. */
	if (!rd_lenbytes(&r, &out->client_id))
		return malformed(why, "truncated client identifier");
	/* [MQTT-3.1.3-4]: client id is a UTF-8 string. Any length is accepted
	 * (3.1.3-5 permits a server to allow more than 23 bytes). */
	if (!mqtt_utf8_valid(out->client_id.ptr, out->client_id.len))
		return malformed(why, "client identifier is not valid UTF-8");

	if (out->has_will) {
		/* 3.1.3.2 Will Topic, 3.1.3.3 Will Message (binary). */
		if (!rd_lenbytes(&r, &out->will_topic))
			return malformed(why, "truncated will topic");
		const char *problem = topic_name_problem(&out->will_topic);
		if (problem)
			return malformed(why, problem);
		if (!rd_lenbytes(&r, &out->will_message))
			return malformed(why, "truncated will message");
	}
	if (out->has_username) {
		/* 3.1.3.4 [MQTT-3.1.3-11]: user name is a UTF-8 string. */
		if (!rd_lenbytes(&r, &out->username))
			return malformed(why, "truncated user name");
		if (!mqtt_utf8_valid(out->username.ptr, out->username.len))
			return malformed(why, "user name is not valid UTF-8");
	}
	if (out->has_password) {
		/* 3.1.3.5: password is binary data. */
		if (!rd_lenbytes(&r, &out->password))
			return malformed(why, "truncated password");
	}
	/* 2.2.3: the remaining length covers exactly the fields present. */
	if (rd_left(&r) != 0)
		return malformed(why, "trailing bytes after CONNECT payload");

	/* 3.1.3.1 [MQTT-3.1.3-8]: a zero-length client id needs
	 * clean_session=1 (the server then assigns an id). MQTT 3.1 required
	 * 1 to 23 characters, so an empty one is always refused there. The
	 * CONNECT is well formed, so this is a CONNACK 0x02, not a close. */
	if (out->client_id.len == 0 && (v31 || !out->clean_session)) {
		out->refuse = MQTT_CONNACK_IDENTIFIER_REJECTED;
		if (why)
			*why = "empty client identifier";
	}
	return MQTT_OK;
}

/* ---------------------------------------------------------------------------
 * PUBLISH and acknowledgements (3.3 .. 3.7)
 */

enum mqtt_result mqtt_decode_publish(uint8_t flags, const uint8_t *body, size_t len,
				     struct mqtt_publish *out, const char **why)
{
	struct rd r = {body, len, 0};

	memset(out, 0, sizeof(*out));
	if (flags > 0x0f)
		return malformed(why, "invalid PUBLISH fixed header flags");
	out->dup = (flags & 0x08u) != 0;
	out->qos = (uint8_t)((flags >> 1) & 0x3u);
	out->retain = (flags & 0x01u) != 0;

	/* 3.3.1.2 [MQTT-3.3.1-4] */
	if (out->qos == 3)
		return malformed(why, "PUBLISH with QoS 3");
	/* 3.3.1.1 [MQTT-3.3.1-2] */
	if (out->dup && out->qos == 0)
		return malformed(why, "DUP set on a QoS 0 PUBLISH");

	/* 3.3.2.1 */
	if (!rd_lenbytes(&r, &out->topic))
		return malformed(why, "truncated topic name");
	const char *problem = topic_name_problem(&out->topic);
	if (problem)
		return malformed(why, problem);

	/* 3.3.2.2: a packet identifier only for QoS 1 and 2, never 0
	 * [MQTT-2.3.1-1]. */
	if (out->qos > 0) {
		if (!rd_u16(&r, &out->packet_id))
			return malformed(why, "truncated packet identifier");
		if (out->packet_id == 0)
			return malformed(why, "packet identifier 0");
	}

	/* 3.3.3: the payload is the rest of the body, possibly empty. */
	out->payload = body + r.off;
	out->payload_len = rd_left(&r);
	return MQTT_OK;
}

enum mqtt_result mqtt_decode_ack(const uint8_t *body, size_t len, uint16_t *packet_id,
				 const char **why)
{
	/* 3.4.2, 3.5.2, 3.6.2, 3.7.2: exactly a packet identifier. */
	if (len != 2)
		return malformed(why, "acknowledgement body is not 2 bytes");
	uint16_t id = (uint16_t)((unsigned)body[0] << 8 | body[1]);
	if (id == 0) /* [MQTT-2.3.1-1] */
		return malformed(why, "packet identifier 0");
	*packet_id = id;
	return MQTT_OK;
}

/* ---------------------------------------------------------------------------
 * SUBSCRIBE and UNSUBSCRIBE (3.8, 3.10)
 */

static enum mqtt_result decode_filters(const uint8_t *body, size_t len, bool with_qos,
				       uint16_t *packet_id, size_t *count, const char **why)
{
	struct rd r = {body, len, 0};
	uint16_t id;

	/* 3.8.2 / 3.10.2 and [MQTT-2.3.1-1] */
	if (!rd_u16(&r, &id))
		return malformed(why, "truncated packet identifier");
	if (id == 0)
		return malformed(why, "packet identifier 0");

	size_t n = 0;
	while (rd_left(&r) > 0) {
		struct mqtt_str f;
		if (!rd_lenbytes(&r, &f))
			return malformed(why, "truncated topic filter");
		/* [MQTT-3.8.3-1], [MQTT-3.10.3-1]: UTF-8 strings; 4.7.1 and
		 * 4.7.3 for the filter syntax. */
		if (!mqtt_utf8_valid(f.ptr, f.len))
			return malformed(why, "topic filter is not valid UTF-8");
		if (!mqtt_filter_valid(f.ptr, f.len))
			return malformed(why, "invalid topic filter");
		if (with_qos) {
			uint8_t q;
			if (!rd_u8(&r, &q))
				return malformed(why, "truncated requested QoS");
			/* 3.8.3.1 [MQTT-3-8.3-4]: reserved bits 0, QoS <= 2. */
			if (q > 2)
				return malformed(why, "invalid requested QoS byte");
		}
		n++;
	}
	/* [MQTT-3.8.3-3], [MQTT-3.10.3-2]: at least one filter. */
	if (n == 0)
		return malformed(why, "no topic filter");

	*packet_id = id;
	*count = n;
	return MQTT_OK;
}

enum mqtt_result mqtt_decode_subscribe(const uint8_t *body, size_t len, uint16_t *packet_id,
				       size_t *count, const char **why)
{
	return decode_filters(body, len, true, packet_id, count, why);
}

enum mqtt_result mqtt_decode_unsubscribe(const uint8_t *body, size_t len, uint16_t *packet_id,
					 size_t *count, const char **why)
{
	return decode_filters(body, len, false, packet_id, count, why);
}

bool mqtt_filter_next(const uint8_t *body, size_t len, bool with_qos, size_t *off,
		      struct mqtt_str *filter, uint8_t *qos)
{
	struct rd r = {body, len, *off < 2 ? 2 : *off}; /* past the packet identifier */
	uint8_t q = 0;
	if (rd_left(&r) == 0 || !rd_lenbytes(&r, filter) || (with_qos && !rd_u8(&r, &q)))
		return false;
	*qos = q;
	*off = r.off;
	return true;
}

bool mqtt_filter_at(const uint8_t *body, size_t len, bool with_qos, size_t i,
		    struct mqtt_str *filter, uint8_t *qos)
{
	struct rd r = {body, len, 2}; /* past the packet identifier */
	for (size_t k = 0;; k++) {
		struct mqtt_str f;
		uint8_t q = 0;
		if (rd_left(&r) == 0 || !rd_lenbytes(&r, &f) || (with_qos && !rd_u8(&r, &q)))
			return false;
		if (k == i) {
			*filter = f;
			*qos = q;
			return true;
		}
	}
}

/* ---------------------------------------------------------------------------
 * Encoders
 */

size_t mqtt_varint_encode(uint32_t len, uint8_t out[4])
{
	/* 2.2.3 */
	if (len > MQTT_MAX_REMAINING_LENGTH)
		return 0;
	size_t n = 0;
	do {
		uint8_t b = (uint8_t)(len & 0x7fu);
		len >>= 7;
		if (len > 0)
			b |= 0x80u;
		out[n++] = b;
	} while (len > 0);
	return n;
}

size_t mqtt_encode_connack(uint8_t *out, size_t cap, bool session_present, uint8_t rc)
{
	if (cap < 4)
		return 0;
	out[0] = (uint8_t)(MQTT_CONNACK << 4);
	out[1] = 2;
	/* 3.2.2.2 [MQTT-3.2.2-4]: Session Present is 0 with a nonzero code. */
	out[2] = (session_present && rc == MQTT_CONNACK_ACCEPTED) ? 1 : 0;
	out[3] = rc;
	return 4;
}

/* Also returns 0, writing nothing, for a type that is not a two-byte
 * acknowledgement or for packet identifier 0 ([MQTT-2.3.1-1]): either is a
 * bug in the caller, and sending it would be a protocol violation. */
size_t mqtt_encode_ack(uint8_t *out, size_t cap, enum mqtt_type type, uint16_t packet_id)
{
	uint8_t flags;
	switch (type) {
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		flags = 0;
		break;
	case MQTT_PUBREL:
		flags = 0x2; /* 3.6.1 [MQTT-3.6.1-1] */
		break;
	default:
		return 0;
	}
	if (packet_id == 0 || cap < 4)
		return 0;
	out[0] = (uint8_t)((unsigned)type << 4 | flags);
	out[1] = 2;
	out[2] = (uint8_t)(packet_id >> 8);
	out[3] = (uint8_t)(packet_id & 0xffu);
	return 4;
}

size_t mqtt_encode_pingresp(uint8_t *out, size_t cap)
{
	/* 3.13 */
	if (cap < 2)
		return 0;
	out[0] = (uint8_t)(MQTT_PINGRESP << 4);
	out[1] = 0;
	return 2;
}

/* 3.3: fixed header (DUP 3.3.1.1, QoS 3.3.1.2, RETAIN 0: a command is not
 * retained), topic name, packet identifier when qos > 0, payload. */
size_t mqtt_encode_publish(uint8_t *out, size_t cap, const char *topic, size_t topic_len,
			   const uint8_t *payload, size_t payload_len, uint8_t qos, bool dup,
			   uint16_t packet_id)
{
	if (qos > 1 || (qos == 1 && packet_id == 0) || (qos == 0 && dup) || topic_len == 0 ||
	    topic_len > 65535)
		return 0;
	size_t body = 2 + topic_len + (qos ? 2 : 0) + payload_len;
	if (body > MQTT_MAX_REMAINING_LENGTH)
		return 0;
	uint8_t vi[4];
	size_t vn = mqtt_varint_encode((uint32_t)body, vi);
	size_t total = 1 + vn + body;
	if (cap < total)
		return 0;
	uint8_t *p = out;
	*p++ = (uint8_t)(MQTT_PUBLISH << 4 | (dup ? 0x8 : 0) | qos << 1);
	memcpy(p, vi, vn);
	p += vn;
	*p++ = (uint8_t)(topic_len >> 8);
	*p++ = (uint8_t)(topic_len & 0xffu);
	memcpy(p, topic, topic_len);
	p += topic_len;
	if (qos) {
		*p++ = (uint8_t)(packet_id >> 8);
		*p++ = (uint8_t)(packet_id & 0xffu);
	}
	if (payload_len)
		memcpy(p, payload, payload_len);
	return total;
}

/* Also returns 0 for no codes (3.9.3: one per filter, and a SUBSCRIBE has at
 * least one), a code other than 0x00, 0x01, 0x02, 0x80 ([MQTT-3.9.3-2]), or a
 * packet identifier 0. */
size_t mqtt_encode_suback(uint8_t *out, size_t cap, uint16_t packet_id, const uint8_t *codes,
			  size_t ncodes)
{
	if (ncodes == 0 || codes == NULL || packet_id == 0)
		return 0;
	if (ncodes > MQTT_MAX_REMAINING_LENGTH - 2)
		return 0;
	for (size_t i = 0; i < ncodes; i++)
		if (codes[i] > 2 && codes[i] != 0x80)
			return 0;

	uint8_t vi[4];
	size_t vn = mqtt_varint_encode((uint32_t)(2 + ncodes), vi);
	size_t total = 1 + vn + 2 + ncodes;
	if (cap < total)
		return 0;
	out[0] = (uint8_t)(MQTT_SUBACK << 4);
	memcpy(out + 1, vi, vn);
	out[1 + vn] = (uint8_t)(packet_id >> 8);
	out[2 + vn] = (uint8_t)(packet_id & 0xffu);
	memcpy(out + 3 + vn, codes, ncodes);
	return total;
}
